#!/usr/bin/env python3
"""Fails unless every value in a Helm values.yaml has a comment right above it.

A key with a scalar, an inline {...}/[...] value or a list is a value and needs a
comment; a key whose children are keys and that has no comment is a group (its
children are checked); everything below a commented value is part of that value.
Usage: check_values_comments.py values.yaml
"""
import re
import sys

KEY = re.compile(r"^(\s*)([A-Za-z_][\w.\-/]*):(.*)$")


def main(path):
    lines = open(path, encoding="utf-8").read().split("\n")
    missing = []
    stack = []  # (indent, is_value)
    for i, line in enumerate(lines):
        m = KEY.match(line)
        if not m:
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if any(is_value for _, is_value in stack):
            continue
        prev = next((l.strip() for l in reversed(lines[:i]) if l.strip()), "")
        commented = prev.startswith("#")
        rest = m.group(3).split(" #")[0].strip()
        nxt = next((l for l in lines[i + 1:] if l.strip() and not l.strip().startswith("#")), "")
        has_list = nxt.strip().startswith("- ")
        is_value = bool(rest) or has_list or commented
        if is_value and not commented:
            missing.append(f"{path}:{i + 1}: {m.group(2)} has no comment")
        stack.append((indent, is_value))
    for message in missing:
        print(message, file=sys.stderr)
    if missing:
        return 1
    print(f"{path}: every value has a comment")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
