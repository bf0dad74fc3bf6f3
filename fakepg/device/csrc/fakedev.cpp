// fakedev: a simulated accelerator on torch's PrivateUse1 device type.
//
// Memory is host memory, but tensors carry their own device type and index, so every
// move between it and cpu is an explicit copy, as on real hardware.  What is here:
//   * an allocator (host malloc, DataPtr tagged PrivateUse1:<current index>),
//   * a device guard (current index per thread, N indices, no streams, no events),
//   * the PrivateUse1 hooks torch.accelerator asks (available, count, current index),
//   * the few kernels no generic path can do (empty, copy, resize),
//   * one boxed fallback for every other aten op: it refuses mixed devices like a real
//     device would, re-homes view ops onto the original storage, and runs the rest on
//     host copies through torch's own cpu_fallback.
// Hooks methods are declared without `override`: which of them exist varies by release.

#include <ATen/EmptyTensor.h>
#include <ATen/detail/PrivateUse1HooksInterface.h>
#include <ATen/native/CPUFallback.h>
#include <ATen/native/Resize.h>
#include <ATen/ops/resize_native.h>
#include <c10/core/Allocator.h>
#include <c10/core/DeviceGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/csrc/autograd/autograd_not_implemented_fallback.h>
#include <torch/library.h>

#include <cstdlib>
#include <memory>
#include <unordered_map>

namespace {

constexpr auto kDev = c10::DeviceType::PrivateUse1;

c10::DeviceIndex device_count() {
  static const c10::DeviceIndex n = [] {
    const char* env = std::getenv("FAKEDEV_DEVICE_COUNT");
    long v = env ? std::strtol(env, nullptr, 10) : 4;
    return static_cast<c10::DeviceIndex>(v < 0 ? 0 : (v > 64 ? 64 : v));
  }();
  return n;
}

thread_local c10::DeviceIndex current_index = 0;  // per thread, like cudaSetDevice

void check_index(c10::DeviceIndex i) {
  TORCH_CHECK(i >= 0 && i < device_count(), "fakedev: invalid device index ", static_cast<int>(i),
              " (", static_cast<int>(device_count()), " devices; set FAKEDEV_DEVICE_COUNT for more)");
}

// ---- allocator -------------------------------------------------------------------------
void host_free(void* p) { c10::free_cpu(p); }

struct HostAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    void* p = n ? c10::alloc_cpu(n) : nullptr;
    return {p, p, &host_free, c10::Device(kDev, current_index)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &host_free; }
  void copy_data(void* dst, const void* src, std::size_t n) const override { default_copy_data(dst, src, n); }
};

HostAllocator allocator;
REGISTER_ALLOCATOR(kDev, &allocator);

// ---- device guard: indices, no streams, no events ----------------------------------------
struct Guard final : c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override { return kDev; }
  c10::Device exchangeDevice(c10::Device d) const override {
    auto old = getDevice();
    setDevice(d);
    return old;
  }
  c10::Device getDevice() const override { return c10::Device(kDev, current_index); }
  void setDevice(c10::Device d) const override {
    TORCH_CHECK(d.type() == kDev, "fakedev: not a fakedev device: ", d);
    if (d.has_index()) {
      check_index(d.index());
      current_index = d.index();
    }
  }
  void uncheckedSetDevice(c10::Device d) const noexcept override {
    if (d.has_index()) current_index = d.index();
  }
  // Only the default stream exists: work on it is done when the call returns.
  c10::Stream getStream(c10::Device d) const noexcept override {
    return c10::Stream(c10::Stream::DEFAULT, d);
  }
  c10::Stream exchangeStream(c10::Stream s) const noexcept override {
    return c10::Stream(c10::Stream::DEFAULT, s.device());
  }
  c10::DeviceIndex deviceCount() const noexcept override { return device_count(); }
  void synchronizeDevice(const c10::DeviceIndex) const {}  // every op is synchronous (2.5+ virtual)
  // record/block/queryEvent, getNewStream: the base class refuses ("doesn't support").
};
C10_REGISTER_GUARD_IMPL(PrivateUse1, Guard);

// ---- hooks torch.accelerator and the c10 core ask ---------------------------------------
struct Hooks final : at::PrivateUse1HooksInterface {
  bool isBuilt() const { return true; }
  bool isAvailable() const { return device_count() > 0; }
  bool hasPrimaryContext(c10::DeviceIndex) const override { return true; }
  void init() const {}
  c10::DeviceIndex deviceCount() const { return device_count(); }
  c10::DeviceIndex getCurrentDevice() const { return current_index; }
  void setCurrentDevice(c10::DeviceIndex i) const { check_index(i); current_index = i; }
  c10::DeviceIndex exchangeDevice(c10::DeviceIndex i) const {
    auto old = current_index;
    setCurrentDevice(i);
    return old;
  }
  c10::DeviceIndex maybeExchangeDevice(c10::DeviceIndex i) const { return exchangeDevice(i); }
  bool isPinnedPtr(const void*) const { return false; }
  void resizePrivateUse1Bytes(const c10::Storage& s, size_t n) const {
    c10::DeviceGuard g(s.device());
    at::native::resize_bytes_cpu(s.unsafeGetStorageImpl(), n);
  }
};

struct RegisterHooks {
  RegisterHooks() { at::RegisterPrivateUse1HooksInterface(new Hooks()); }
} register_hooks;

// ---- kernels ------------------------------------------------------------------------------
c10::Device resolve(std::optional<c10::Device> d) {
  auto i = d && d->has_index() ? d->index() : current_index;
  check_index(i);
  return c10::Device(kDev, i);
}

at::Tensor empty(c10::IntArrayRef size, std::optional<at::ScalarType> dtype, std::optional<at::Layout>,
                 std::optional<c10::Device> device, std::optional<bool>, std::optional<at::MemoryFormat> fmt) {
  c10::DeviceGuard g(resolve(device));
  return at::detail::empty_generic(size, &allocator, c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                   c10::dtype_or_default(dtype), fmt);
}

at::Tensor empty_strided(c10::IntArrayRef size, c10::IntArrayRef stride, std::optional<at::ScalarType> dtype,
                         std::optional<at::Layout>, std::optional<c10::Device> device, std::optional<bool>) {
  c10::DeviceGuard g(resolve(device));
  return at::detail::empty_strided_generic(size, stride, &allocator,
                                           c10::DispatchKeySet(c10::DispatchKey::PrivateUse1),
                                           c10::dtype_or_default(dtype));
}

// `out` (over some storage) takes `like`'s sizes, strides, offset and conj/neg bits.
at::Tensor with_geometry_of(at::Tensor out, const at::Tensor& like) {
  auto* impl = out.unsafeGetTensorImpl();
  impl->set_sizes_and_strides(like.sizes(), like.strides());
  impl->set_storage_offset(like.storage_offset());
  impl->_set_conj(like.is_conj());
  impl->_set_neg(like.is_neg());
  return out;
}

// A cpu tensor over the same bytes (no copy, no ownership): lets cpu kernels read and
// write fakedev memory directly.  Valid while `t` lives.
at::Tensor host_alias(const at::Tensor& t) {
  if (t.device().type() != kDev) return t;
  const auto& st = t.storage();
  c10::Storage storage(c10::Storage::use_byte_size_t(), st.nbytes(),
                       c10::DataPtr(const_cast<void*>(st.data()), c10::Device(c10::kCPU)), nullptr, false);
  return with_geometry_of(at::detail::make_tensor<c10::TensorImpl>(
                              std::move(storage), c10::DispatchKeySet(c10::DispatchKey::CPU), t.dtype()), t);
}

// copy_ between fakedev and cpu (either way) or two fakedev indices: a host copy, with
// dtype conversion, broadcasting and strides handled by the cpu copy kernel.  A same-dtype
// copy moves bytes, as a device memcpy does: the cpu kernel would turn a bool byte 2 into 1
// and hide a backend that stores a count in a bool.
at::Tensor copy_from(const at::Tensor& self, const at::Tensor& dst, bool /*non_blocking*/) {
  for (const auto* t : {&self, &dst}) {
    TORCH_CHECK(t->device().type() == kDev || t->is_cpu(), "fakedev: copy between ", self.device(), " and ",
                dst.device(), " is not supported");
  }
  auto src = host_alias(self), out = host_alias(dst);
  if (src.scalar_type() == at::kBool && out.scalar_type() == at::kBool) {
    src = src.view(at::kByte);
    out = out.view(at::kByte);
  }
  out.copy_(src);
  return dst;
}

at::Tensor copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  if (dst.sizes() != self.sizes()) dst.resize_(self.sizes());
  return copy_from(self, dst, false);
}

const at::Tensor& resize(const at::Tensor& self, c10::IntArrayRef size, std::optional<at::MemoryFormat> fmt) {
  c10::DeviceGuard g(self.device());  // new bytes belong to self's index, not the current one
  return at::native::resize_(self, size, fmt);
}

// ---- the fallback -----------------------------------------------------------------------
template <typename F>
void for_each_tensor(const c10::IValue& v, const F& f) {
  if (v.isTensor()) {
    f(v.toTensor());
  } else if (v.isList()) {
    for (const c10::IValue& e : v.toListRef()) for_each_tensor(e, f);
  }
}

// Real devices refuse to mix devices in one op (cpu 0-dim tensors pass: they are scalars).
void check_one_device(const c10::OperatorHandle& op, const torch::jit::Stack& args) {
  std::optional<c10::Device> seen;
  for (const auto& a : args) {
    for_each_tensor(a, [&](const at::Tensor& t) {
      if (!t.defined() || (t.is_cpu() && t.dim() == 0)) return;
      if (!seen) {
        seen = t.device();
      } else {
        TORCH_CHECK(*seen == t.device(), "Expected all tensors to be on the same device, but found at least "
                    "two devices, ", *seen, " and ", t.device(), "! (when checking arguments for ",
                    op.schema().name(), ")");
      }
    });
  }
}

bool returns_view(const c10::FunctionSchema& schema) {
  for (const auto& r : schema.returns()) {
    if (r.alias_info() && !r.alias_info()->isWrite()) return true;
  }
  return false;
}

// A view must share its base's memory, which cpu_fallback cannot do: run the cpu kernel on
// host aliases, then give each result the geometry it computed over the ORIGINAL storage.
void view_fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  const auto n = op.schema().arguments().size();
  std::unordered_map<const c10::StorageImpl*, at::Tensor> base_of;  // alias storage -> device tensor
  for (auto i = stack->size() - n; i < stack->size(); ++i) {
    auto& v = (*stack)[i];
    if (v.isTensor() && v.toTensor().defined() && v.toTensor().device().type() == kDev) {
      at::Tensor dev = v.toTensor();
      at::Tensor alias = host_alias(dev);
      base_of.emplace(alias.storage().unsafeGetStorageImpl(), dev);
      v = alias;
    }
  }
  op.redispatchBoxed(c10::DispatchKeySet(c10::DispatchKey::CPU), stack);
  const auto nret = op.schema().returns().size();
  for (auto i = stack->size() - nret; i < stack->size(); ++i) {
    auto& v = (*stack)[i];
    auto rehome = [&](const at::Tensor& r) -> at::Tensor {
      auto it = base_of.find(r.storage().unsafeGetStorageImpl());
      TORCH_CHECK(it != base_of.end(), "fakedev: view op ", op.schema().name(), " returned new memory");
      const at::Tensor& base = it->second;
      return with_geometry_of(at::detail::make_tensor<c10::TensorImpl>(
                                  c10::TensorImpl::VIEW, c10::Storage(base.storage()), base.key_set(), r.dtype()), r);
    };
    if (v.isTensor()) {
      v = rehome(v.toTensor());
    } else if (v.isTensorList()) {
      c10::List<at::Tensor> out;
      for (const at::Tensor& t : v.toTensorList().vec()) out.push_back(rehome(t));
      v = out;
    }
  }
}

void fallback(const c10::OperatorHandle& op, torch::jit::Stack* stack) {
  check_one_device(op, torch::jit::last(*stack, op.schema().arguments().size()).vec());
  if (returns_view(op.schema())) {
    view_fallback(op, stack);
  } else {
    at::native::cpu_fallback(op, stack);
  }
}

// Ops without an autograd formula (c10d's functional collectives, custom ops) need an
// autograd fallback for this key; torch has its own only in newer releases (not 2.9.1, 2.13.0 has).
struct AutogradFallback {
  std::unique_ptr<torch::Library> lib;
  AutogradFallback() {
    constexpr auto key = c10::DispatchKey::AutogradPrivateUse1;
    if (!c10::Dispatcher::singleton().hasBackendFallbackForDispatchKey(key)) {
      lib = std::make_unique<torch::Library>(torch::Library::IMPL, "_", key, __FILE__, __LINE__);
      lib->fallback(torch::autograd::basicAutogradNotImplementedFallback());
    }
  }
} autograd_fallback;

}  // namespace

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", &empty);
  m.impl("empty_strided", &empty_strided);
  m.impl("_copy_from", &copy_from);
  m.impl("_copy_from_and_resize", &copy_from_and_resize);
  m.impl("resize_", &resize);
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&fallback>());
}

// What torch.fakedev needs from C++ (the current index is per thread, as on CUDA).
TORCH_LIBRARY(fakedev, m) {
  m.def("device_count() -> int", [] { return static_cast<int64_t>(device_count()); });
  m.def("current_device() -> int", [] { return static_cast<int64_t>(current_index); });
  m.def("set_device(int index) -> ()", [](int64_t i) {
    check_index(static_cast<c10::DeviceIndex>(i));
    current_index = static_cast<c10::DeviceIndex>(i);
  });
}
