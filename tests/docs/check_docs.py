#!/usr/bin/env python3
"""Checks the links, file paths and commands in the project's documentation.

Reads README.md, BENCHMARKS.md, docs/**/*.md and every folder's README.md, and reports
each problem as `file:line: what is wrong` (exit 1 if there is any):

  (a) every relative markdown link [x](path) or [x](path#anchor) points at a file or folder
      that exists, and the anchor at a heading of the target (GitHub's slug rules);
  (b) every path in backticks that clearly names a repository file (it has a `/` and an
      extension, or ends in `/`) exists, relative to the repository root or the page's folder;
      build outputs, URLs, globs, absolute paths and placeholders (DIR, FILE, <x>) are skipped;
  (c) every command in a ```sh / ```bash block: `shrink ...`, `shrink-coordinator ...`,
      `shrink-worker ...` (also as build/bin/...): the binary exists in --bin and
      `<binary> [<subcommand>] --help` exits 0; `make <target>`: the Makefile has the target;
      `bash <script>`, `python3 <script>`, `<script>.sh`: the script exists.

--no-commands skips running the binaries in (c), so the check runs without a build (make targets
and scripts are still checked: they need none). Python 3 standard library only.
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import unicodedata

BINARIES = ("shrink", "shrink-coordinator", "shrink-worker", "shrink-torch", "shrink-local")
SKIP_DIRS = {".git", "node_modules", "build", "corpus", "results"}
FENCE = re.compile(r"^\s*(```|~~~)\s*([A-Za-z0-9_+-]*)")
LINK = re.compile(r"(!?)\[((?:[^\[\]]|\[[^\]]*\])*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
EXTENSION = re.compile(r"[^/]\.[A-Za-z0-9]+$")
PLACEHOLDER = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Za-z0-9]+)?$")


def doc_files(root):
    """README.md, BENCHMARKS.md, docs/**/*.md and every README.md below the root."""
    found = []
    for name in ("README.md", "BENCHMARKS.md"):
        if os.path.isfile(os.path.join(root, name)):
            found.append(name)
    for top, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.startswith("build"))
        rel_top = os.path.relpath(top, root)
        if rel_top == ".":
            continue
        for f in sorted(files):
            rel = os.path.normpath(os.path.join(rel_top, f))
            in_docs = rel.split(os.sep)[0] == "docs" and f.endswith(".md")
            if (f == "README.md" or in_docs) and rel not in found:
                found.append(rel)
    return found


def github_slug(text):
    """The anchor GitHub gives a heading: markup dropped, lower case, punctuation removed,
    spaces to hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)  # links keep their text
    text = re.sub(r"<[^>]+>", "", text)                       # inline HTML
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)             # _emphasis_, keep snake_case
    text = text.strip().lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch in " -_" or cat[0] in ("L", "N") or cat == "Mn":
            out.append("-" if ch == " " else ch)
    return "".join(out)


def scan(text):
    """Yields (line_number, line, fence_language or None) for every line; fence lines
    themselves are yielded with language '<fence>'."""
    lang = None
    for number, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if m:
            if lang is None:
                lang = m.group(2).lower() or "text"
            else:
                lang = None
            yield number, line, "<fence>"
            continue
        yield number, line, lang


def anchors_of(path, cache):
    if path not in cache:
        slugs = set()
        counts = {}
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            text = ""
        for _, line, lang in scan(text):
            if lang is not None:
                continue
            m = HEADING.match(line)
            if not m:
                continue
            slug = github_slug(m.group(2))
            n = counts.get(slug, 0)
            counts[slug] = n + 1
            slugs.add(slug if n == 0 else "%s-%d" % (slug, n))
        for m in re.finditer(r"<a\s+(?:name|id)=\"([^\"]+)\"", text):
            slugs.add(m.group(1))
        cache[path] = slugs
    return cache[path]


def strip_code_spans(line):
    return CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)


def check_links(root, doc, number, line, problems, anchor_cache):
    doc_dir = os.path.dirname(os.path.join(root, doc))
    for m in LINK.finditer(strip_code_spans(line)):
        target = m.group(3)
        label = line[m.start(2):m.end(2)]
        if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith("//"):
            continue  # http:, https:, mailto:, ...
        path, _, anchor = target.partition("#")
        if path:
            full = os.path.normpath(os.path.join(root if path.startswith("/") else doc_dir,
                                                 path.lstrip("/")))
            if not os.path.exists(full):
                problems.append("%s:%d: link [%s](%s): %s does not exist"
                                % (doc, number, label, target, path))
                continue
        else:
            full = os.path.join(root, doc)
        if anchor:
            if os.path.isdir(full) or not full.endswith(".md"):
                continue
            if anchor.lower() not in anchors_of(full, anchor_cache):
                problems.append("%s:%d: link [%s](%s): no heading '#%s' in %s"
                                % (doc, number, label, target, anchor,
                                   os.path.relpath(full, root)))


def looks_like_path(span):
    if "/" not in span or any(c in span for c in " \t*?[]{}<>$:|=,;()'\"\\@~"):
        return False
    if span.startswith(("/", "-", "http", "./build", "../build")) or "//" in span:
        return False
    parts = [p for p in span.split("/") if p not in ("", ".", "..")]
    if not parts or parts[0] == "build" or parts[0].startswith("build-"):
        return False  # build outputs
    if any(PLACEHOLDER.match(p) and not EXTENSION.search(p) for p in parts):
        return False  # DIR, FILE, JOB_ID, ...
    if any(p.isupper() and "." not in p for p in parts):
        return False
    return span.endswith("/") or bool(EXTENSION.search(parts[-1]))


def check_paths(root, doc, number, line, problems):
    doc_dir = os.path.dirname(os.path.join(root, doc))
    for m in CODE_SPAN.finditer(line):
        span = m.group(2).strip()
        if not looks_like_path(span):
            continue
        # Only paths into this repository: their first folder must be here (`ATen/...` is a
        # LibTorch header, `off/` a folder of a Debian package).
        parts = span.split("/")
        first = next(i for i, p in enumerate(parts) if p not in ("", ".", ".."))
        prefix = "/".join(parts[:first + 1])
        if not any(os.path.exists(os.path.join(base, prefix)) for base in (root, doc_dir)):
            continue
        if not (os.path.exists(os.path.join(root, span)) or os.path.exists(os.path.join(doc_dir, span))):
            problems.append("%s:%d: `%s` names a file that does not exist" % (doc, number, span))


def shell_commands(lines):
    """Joins continuation lines of a shell block and splits them into simple commands
    (lists of words), each with the line it starts on."""
    joined = []
    buf, start = "", None
    for number, line in lines:
        if start is None:
            start = number
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        joined.append((start, buf + line))
        buf, start = "", None
    if buf:
        joined.append((start, buf))
    for number, text in joined:
        text = re.sub(r"^\s*\$\s+", "", text)  # a "$ " prompt
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        try:
            tokens = list(lexer)
        except ValueError:
            tokens = text.split("#", 1)[0].split()
        command = []
        for token in tokens + [";"]:
            if token and set(token) <= set(";&|"):
                if command:
                    yield number, command
                command = []
            else:
                command.append(token)


def make_targets(root):
    targets = set()
    try:
        with open(os.path.join(root, "Makefile"), encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^([A-Za-z0-9_.%/-]+(?:\s+[A-Za-z0-9_.%/-]+)*)\s*:(?!=)", line)
                if m:
                    targets.update(m.group(1).split())
    except OSError:
        pass
    return targets


def check_command(root, doc, number, words, args, problems, help_cache, targets):
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words = words[1:]  # VAR=value prefixes
    if words and words[0] in ("sudo", "env", "exec", "time", "nice"):
        words = words[1:]
    if not words:
        return
    head = words[0]
    where = "%s:%d:" % (doc, number)
    name = os.path.basename(head)
    is_binary = name in BINARIES and (head == name or re.match(r"^(\./)?(build[^/]*/)?bin/", head))
    if is_binary:
        if args.no_commands:
            return
        binary = os.path.join(args.bin, name) if args.bin else None
        if not binary or not os.access(binary, os.X_OK):
            problems.append("%s `%s`: no executable %s in --bin %s" % (where, " ".join(words), name, args.bin))
            return
        sub = []
        if name == "shrink":
            rest = [w for w in words[1:] if not w.startswith("-")]
            if len(words) > 1 and not words[1].startswith("-") and rest:
                sub = [rest[0]]
        key = (binary, tuple(sub))
        if key not in help_cache:
            try:
                run = subprocess.run([binary] + sub + ["--help"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, timeout=60)
                help_cache[key] = (run.returncode, run.stderr.decode(errors="replace").strip())
            except (OSError, subprocess.TimeoutExpired) as e:
                help_cache[key] = (-1, str(e))
        code, err = help_cache[key]
        if code != 0:
            problems.append("%s `%s %s --help` exits %d%s" % (where, name, " ".join(sub), code,
                                                            (": " + err.splitlines()[-1]) if err else ""))
        return
    if head == "make":
        for w in words[1:]:
            if w.startswith("-") or "=" in w:
                continue
            if w not in targets:
                problems.append("%s `make %s`: the Makefile has no target '%s'" % (where, w, w))
        return
    script = None
    if head in ("bash", "sh", "python3", "python") and len(words) > 1:
        script = next((w for w in words[1:] if not w.startswith("-")), None)
        if head.startswith("python") and script and not script.endswith(".py"):
            script = None
    elif head.endswith(".sh") or (head.endswith(".py") and "/" in head):
        script = head
    if script and not re.search(r"[$<>*]", script):
        if not os.path.isfile(os.path.join(root, script)):
            problems.append("%s `%s`: script %s does not exist" % (where, " ".join(words), script))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=".", help="repository root")
    parser.add_argument("--bin", default="", help="folder with the built binaries (build/bin)")
    parser.add_argument("--no-commands", action="store_true",
                        help="do not run the binaries' --help (no build needed); make targets and scripts are still checked")
    parser.add_argument("files", nargs="*", help="check only these docs (relative to --root)")
    args = parser.parse_args()
    root = os.path.abspath(args.root)
    if args.bin:
        args.bin = os.path.abspath(args.bin)
    docs = args.files or doc_files(root)
    targets = make_targets(root)
    problems, anchor_cache, help_cache = [], {}, {}
    for doc in docs:
        with open(os.path.join(root, doc), encoding="utf-8") as f:
            text = f.read()
        block = []
        block_lang = None
        for number, line, lang in scan(text):
            if lang == "<fence>":
                if block_lang in ("sh", "bash", "shell", "console"):
                    for n, words in shell_commands(block):
                        check_command(root, doc, n, words, args, problems, help_cache, targets)
                block, block_lang = [], None
                continue
            if lang is not None:
                block_lang = lang
                block.append((number, line))
                continue
            check_links(root, doc, number, line, problems, anchor_cache)
            check_paths(root, doc, number, line, problems)
    for p in problems:
        print(p)
    checked = "links and paths" + ("" if args.no_commands else ", commands")
    print("check_docs: %d files, %s: %d problem(s)" % (len(docs), checked, len(problems)),
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
