#!/usr/bin/env python3
"""A stand-in for the GitHub CLI (`gh`), for running the workflows' scripts in
tests: the few subcommands they use, over one repository kept in a JSON file.

Strict where the workflows could be wrong: a subcommand, flag or repository it
does not know is an error (exit 2), as is a call without GH_TOKEN (`gh` in
Actions needs it); `--jq` is applied with jq, strings printed raw, as `gh` does.

    FAKE_GH_STATE   the JSON file: {"repository": "o/r", "issues": [...],
                    "comments": {"7": [...]}, "pulls": {"8": "CLOSED"},
                    "labels": [...], "calls": [[argv...], ...]}
"""

import argparse
import json
import os
import subprocess
import sys


def fail(message, code=2):
    print(f"gh: {message}", file=sys.stderr)
    sys.exit(code)


class Parser(argparse.ArgumentParser):
    def error(self, message):
        fail(f"{self.prog}: {message}")


def load():
    with open(os.environ["FAKE_GH_STATE"]) as file:
        return json.load(file)


def save(state):
    with open(os.environ["FAKE_GH_STATE"], "w") as file:
        json.dump(state, file, indent=1)


def output(value, jq):
    """Print `value` as `gh` does: JSON, or through `--jq` with raw strings."""
    text = json.dumps(value)
    if jq is None:
        print(text)
        return
    try:
        done = subprocess.run(["jq", "-r", jq], input=text, capture_output=True, text=True)
    except FileNotFoundError:
        fail("--jq needs jq, as the runners have it: install it (Debian/Ubuntu: apt-get install jq)", 1)
    if done.returncode != 0:
        fail(f"--jq {jq!r}: {done.stderr.strip()}")
    sys.stdout.write(done.stdout)


def check_repository(state, repository):
    if repository != state["repository"]:
        fail(f"repository {repository!r} is not {state['repository']!r}")


def issue(state, argv):
    if not argv:
        fail("issue: a subcommand is needed")
    command, rest = argv[0], argv[1:]
    parser = Parser(prog=f"gh issue {command}")
    parser.add_argument("--repo", required=True)
    if command == "list":
        parser.add_argument("--label")
        parser.add_argument("--state", choices=["open", "closed", "all"], default="open")
        parser.add_argument("--limit", type=int, default=30)
        parser.add_argument("--json", required=True)
        parser.add_argument("--jq")
        args = parser.parse_args(rest)
        check_repository(state, args.repo)
        fields = args.json.split(",")
        listed = [
            {field: entry[field] for field in fields}
            for entry in state["issues"]
            if (args.state == "all" or entry["state"] == args.state.upper())
            and (args.label is None or args.label in entry["labels"])
        ][: args.limit]
        output(listed, args.jq)
        return
    if command == "create":
        parser.add_argument("--title", required=True)
        parser.add_argument("--label", action="append", default=[])
        parser.add_argument("--body-file", required=True)
        args = parser.parse_args(rest)
        check_repository(state, args.repo)
        for label in args.label:
            if label not in state["labels"]:
                fail(f"could not add label: '{label}' not found", 1)
        number = 1 + max([entry["number"] for entry in state["issues"]] + [0])
        with open(args.body_file) as file:
            body = file.read()
        state["issues"].append(
            {"number": number, "title": args.title, "state": "OPEN", "labels": args.label, "body": body, "comments": []}
        )
        print(f"https://github.com/{args.repo}/issues/{number}")
        return
    parser.add_argument("number", type=int)
    if command == "edit":
        parser.add_argument("--body-file", required=True)
        args = parser.parse_args(rest)
        check_repository(state, args.repo)
        with open(args.body_file) as file:
            find_issue(state, args.number)["body"] = file.read()
        return
    if command == "close":
        parser.add_argument("--comment")
        args = parser.parse_args(rest)
        check_repository(state, args.repo)
        entry = find_issue(state, args.number)
        entry["state"] = "CLOSED"
        if args.comment:
            entry["comments"].append(args.comment)
        return
    fail(f"issue {command}: not known to this stand-in")


def find_issue(state, number):
    for entry in state["issues"]:
        if entry["number"] == number:
            return entry
    fail(f"issue #{number} not found", 1)


def label(state, argv):
    parser = Parser(prog="gh label create")
    parser.add_argument("command", choices=["create"])
    parser.add_argument("name")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--color")
    parser.add_argument("--description")
    parser.add_argument("--force", action="store_true")
    args = parser.parse_args(argv)
    check_repository(state, args.repo)
    if args.name in state["labels"] and not args.force:
        fail(f"label with name {args.name!r} already exists; use `--force` to update", 1)
    if args.name not in state["labels"]:
        state["labels"].append(args.name)


def pr(state, argv):
    parser = Parser(prog="gh pr view")
    parser.add_argument("command", choices=["view"])
    parser.add_argument("number")
    parser.add_argument("--repo", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--jq")
    args = parser.parse_args(argv)
    check_repository(state, args.repo)
    if args.number not in state["pulls"]:
        fail(f"Could not resolve to a PullRequest with the number of {args.number}.", 1)
    entry = {"state": state["pulls"][args.number], "number": int(args.number)}
    output({field: entry[field] for field in args.json.split(",")}, args.jq)


def api(state, argv):
    parser = Parser(prog="gh api")
    parser.add_argument("endpoint")
    parser.add_argument("--method", "-X")
    parser.add_argument("--paginate", action="store_true")
    parser.add_argument("--jq", "-q")
    parser.add_argument("-f", "--raw-field", action="append", default=[])
    parser.add_argument("-F", "--field", action="append", default=[])
    args = parser.parse_args(argv)
    fields = {}
    for pair in args.raw_field:
        name, _, value = pair.partition("=")
        fields[name] = value
    for pair in args.field:
        name, _, value = pair.partition("=")
        if value.startswith("@"):
            with open(value[1:]) as file:
                value = file.read()
        fields[name] = value
    method = args.method or ("POST" if fields else "GET")
    parts = args.endpoint.strip("/").split("/")
    if len(parts) < 5 or parts[0] != "repos":
        fail(f"api {args.endpoint}: not known to this stand-in")
    check_repository(state, f"{parts[1]}/{parts[2]}")
    rest = parts[3:]
    comments = state["comments"]
    if rest[0] == "issues" and len(rest) == 3 and rest[2] == "comments":
        thread = comments.setdefault(rest[1], [])
        if method == "GET":
            output(thread, args.jq)
            return
        if method == "POST":
            if "body" not in fields:
                fail("api: a comment needs a body", 1)
            comment = {"id": next_comment_id(comments), "body": fields["body"], "user": {"login": "github-actions[bot]"}}
            thread.append(comment)
            output(comment, args.jq)
            return
    if rest[0] == "issues" and len(rest) == 3 and rest[1] == "comments" and method == "PATCH":
        for thread in comments.values():
            for comment in thread:
                if str(comment["id"]) == rest[2]:
                    if comment["user"]["login"] != "github-actions[bot]":
                        fail(f"HTTP 403: Resource not accessible by integration ({args.endpoint})", 1)
                    comment["body"] = fields["body"]
                    output(comment, args.jq)
                    return
        fail(f"HTTP 404: Not Found ({args.endpoint})", 1)
    fail(f"api {method} {args.endpoint}: not known to this stand-in")


def next_comment_id(comments):
    return 1 + max([comment["id"] for thread in comments.values() for comment in thread] + [1000])


def main():
    if not os.environ.get("GH_TOKEN"):
        fail("no GH_TOKEN: gh in GitHub Actions needs the token in the step's environment", 4)
    state = load()
    state.setdefault("calls", []).append(sys.argv[1:])
    save(state)
    if len(sys.argv) < 2:
        fail("a command is needed")
    command, argv = sys.argv[1], sys.argv[2:]
    handlers = {"issue": issue, "label": label, "pr": pr, "api": api}
    if command not in handlers:
        fail(f"{command}: not known to this stand-in")
    handlers[command](state, argv)
    save(state)


if __name__ == "__main__":
    main()
