"""``python -m conformance.report``: merge, diff, summarise, re-render and screenshot reports.

Every error is one line on stderr (exit status 2); ``diff`` exits 1 when it finds regressions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .model import ReportError, load_report, load_reports, run_stem, safe_name

EXIT_ERROR = 2


class CliError(Exception):
    pass


def _load_many(paths: Sequence[str]) -> List[Tuple[str, Dict[str, Any]]]:
    for p in paths:
        if not os.path.exists(p):
            raise CliError("%s: no such file or directory" % p)
    found = load_reports(paths)
    if not found:
        raise CliError("no report JSON found in %s" % ", ".join(paths))
    return found


# -- subcommands ----------------------------------------------------------------------------------------------


def cmd_merge(args: argparse.Namespace) -> int:
    from .html import render_index_dir, write_run_html

    found = _load_many(args.sources)
    out = args.output
    os.makedirs(out, exist_ok=True)
    written: Dict[str, Tuple[str, str]] = {}  # stem -> (host, started) written in this merge
    for src, doc in found:
        run = doc["run"]
        ident = (str(run.get("host")), str(run.get("started")))
        stem = run_stem(run)
        candidates = [stem, "%s-%s" % (stem, safe_name(run.get("host", "host")))]
        candidates += ["%s-%d" % (candidates[1], i) for i in range(2, 1000)]
        for name in candidates:
            target = os.path.join(out, name + ".json")
            if name in written:
                if written[name] == ident:
                    break
                continue
            if os.path.exists(target) and not os.path.samefile(target, src):
                try:
                    other = load_report(target)
                    same = (str(other["run"].get("host")), str(other["run"].get("started"))) == ident
                except ReportError:
                    same = False
                if not same:
                    continue
            break
        written[name] = ident
        if not (os.path.exists(target) and os.path.samefile(target, src)):
            shutil.copyfile(src, target)
        write_run_html(doc, os.path.join(out, name + ".html"))
        print("%s -> %s" % (src, target))
    index = render_index_dir(out)
    print("index: %s" % index)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from .diff import diff_reports, format_diff_markdown, format_diff_text

    old, new = load_report(args.old), load_report(args.new)
    d = diff_reports(old, new)
    text = format_diff_markdown(d, limit=args.limit) if args.markdown else format_diff_text(d, limit=args.limit)
    sys.stdout.write(text)
    return 1 if d["regressions"] else 0


def cmd_expect(args: argparse.Namespace) -> int:
    from .expectations import Expectations, baseline_text

    text = baseline_text([doc for _, doc in _load_many(args.reports)], torch_pattern=args.torch)
    Expectations.from_text(text, "<baseline>")      # what it writes must load
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        print(args.output)
    else:
        sys.stdout.write(text)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from .summary import markdown_summary, terminal_table

    docs = [doc for _, doc in _load_many(args.paths)]
    if args.text:
        print(terminal_table(docs))
    else:
        sys.stdout.write(markdown_summary(docs))
        if args.support:
            from .support_table import support_markdown

            sys.stdout.write("\n" + support_markdown([(run_stem(d["run"]) + ".html", d) for d in docs], link=False))
    return 0


def cmd_support(args: argparse.Namespace) -> int:
    from .support_table import support_markdown

    found = _load_many(args.paths)
    entries = [(os.path.splitext(os.path.basename(p))[0] + ".html", doc) for p, doc in found]
    sys.stdout.write(support_markdown(entries, link=not args.no_links))
    return 0


def cmd_html(args: argparse.Namespace) -> int:
    from .html import render_index_dir, write_run_html

    doc = load_report(args.file)
    out = args.output or os.path.splitext(args.file)[0] + ".html"
    write_run_html(doc, out)
    print(out)
    if args.index:
        print(render_index_dir(os.path.dirname(os.path.abspath(args.file))))
    return 0


def cmd_index(args: argparse.Namespace) -> int:
    from .html import render_index_dir

    if not os.path.isdir(args.dir):
        raise CliError("%s: not a directory" % args.dir)
    print(render_index_dir(args.dir, ensure_run_pages=True))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from .schema import SCHEMA_PATH

    print(SCHEMA_PATH)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    for p in args.files:
        load_report(p, full_validation=True)
        print("%s: valid (schema %s)" % (p, load_report(p)["schema"]))
    return 0


def cmd_screenshot(args: argparse.Namespace) -> int:
    from .browser import screenshot

    page = args.html.partition("#")[0]
    if "://" not in args.html and not os.path.isfile(page):
        raise CliError("%s: no such file" % page)
    print(screenshot(args.html, args.png, window=args.window.replace("x", ",")))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    import json

    from .html import render_index_dir, write_run_html
    from .synth import make_doc

    os.makedirs(args.output, exist_ok=True)
    docs = [
        make_doc("gloo", "cpu", 2, scale=args.scale, seed=1, flaky=0.005),
        make_doc("gloo", "cpu", 4, scale=args.scale, seed=2, flaky=0.01, complete=False, interrupted=True),
        make_doc("fakepg", "cpu", 2, scale=args.scale, seed=3, flaky=0.0),
    ]
    for d in docs:
        stem = os.path.join(args.output, run_stem(d["run"]))
        with open(stem + ".json", "w", encoding="utf-8") as f:
            json.dump(d, f)
        write_run_html(d, stem + ".html")
    print(render_index_dir(args.output))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m conformance.report", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("merge", help="merge runs (from several machines) into one directory with index.html")
    s.add_argument("sources", nargs="+", metavar="DIR_OR_FILE")
    s.add_argument("-o", "--output", required=True, metavar="OUT_DIR")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("diff", help="compare two runs; exit 1 if a case regressed")
    s.add_argument("old", metavar="OLD.json")
    s.add_argument("new", metavar="NEW.json")
    s.add_argument("--markdown", action="store_true", help="GitHub Markdown instead of text")
    s.add_argument("--limit", type=int, default=50, help="cases listed per category (default 50)")
    s.set_defaults(func=cmd_diff)

    s = sub.add_parser("expect", help="write an expectations file (a baseline) from runs: their non-conformant "
                                      "results become expected, so later runs report regressions only")
    s.add_argument("reports", nargs="+", metavar="REPORT.json_OR_DIR")
    s.add_argument("-o", "--output", metavar="FILE.toml", help="default: standard output")
    s.add_argument("--torch", metavar="PATTERN", help='torch versions it applies to (default: "<major>.<minor>.*")')
    s.set_defaults(func=cmd_expect)

    s = sub.add_parser("summary", help="Markdown summary (one row per run) for CI step summaries")
    s.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    s.add_argument("--text", action="store_true", help="plain-text table instead of Markdown")
    s.add_argument("--support", action="store_true", help="append the measured support table")
    s.set_defaults(func=cmd_summary)

    s = sub.add_parser("support", help="measured backend-support table as Markdown")
    s.add_argument("paths", nargs="+", metavar="FILE_OR_DIR")
    s.add_argument("--no-links", action="store_true")
    s.set_defaults(func=cmd_support)

    s = sub.add_parser("html", help="re-render a run page from its JSON")
    s.add_argument("file", metavar="FILE.json")
    s.add_argument("-o", "--output", metavar="OUT.html", help="default: beside the JSON")
    s.add_argument("--index", action="store_true", help="also regenerate index.html in the JSON's directory")
    s.set_defaults(func=cmd_html)

    s = sub.add_parser("index", help="regenerate index.html (and missing run pages) over a report directory")
    s.add_argument("dir", metavar="DIR")
    s.set_defaults(func=cmd_index)

    s = sub.add_parser("schema", help="print the path of the JSON Schema")
    s.set_defaults(func=cmd_schema)

    s = sub.add_parser("validate", help="validate report JSON files against the schema")
    s.add_argument("files", nargs="+", metavar="FILE.json")
    s.set_defaults(func=cmd_validate)

    s = sub.add_parser("screenshot", help="PNG of a page, with headless Chromium")
    s.add_argument("html", metavar="HTML")
    s.add_argument("png", metavar="PNG")
    s.add_argument("--window", default="1400x1000", help="window size WxH (default 1400x1000)")
    s.set_defaults(func=cmd_screenshot)

    s = sub.add_parser("demo", help="write synthetic reports and their pages (to look at the layout)")
    s.add_argument("output", metavar="OUT_DIR")
    s.add_argument("--scale", type=int, default=1)
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CliError, ValueError) as e:  # ReportError is a ValueError
        print("error: %s" % e, file=sys.stderr)
        return EXIT_ERROR
    except OSError as e:
        print("error: %s" % (" ".join(str(e).split())), file=sys.stderr)
        return EXIT_ERROR
    except Exception as e:  # BrowserError and anything unforeseen: still one line
        name = type(e).__name__
        print("error: %s%s" % ("" if name == "BrowserError" else name + ": ", e), file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
