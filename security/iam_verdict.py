#!/usr/bin/env python3
"""Judge one IAM principal of a deployed account with Principal Mapper (PMapper).

Builds PMapper's graph of the account behind an emulator endpoint (IAM users and
roles, with edges for iam, sts and lambda), then:

1. evaluates each query of a JSON list with PMapper's policy simulation
   (`query_interface.search_authorization_for`: the principal itself, or any
   principal it can reach through the graph's edges), the query's `conditions`
   given as the request context, and compares the answer with `expect`;
2. runs PMapper's privilege-escalation analysis (`presets.privesc.can_privesc`):
   is the principal an admin, or can it reach one;
3. (unless --no-what-if) runs the same analysis on a what-if graph, because
   PMapper 1.1.5 only models a principal rewriting *its own* policies: every IAM
   change the principal (or a principal it reaches) is allowed to make to *other*
   principals is assumed made, in the worst way, and the graph rebuilt by PMapper
   from the changed IAM data:
     - iam:CreatePolicyVersion on a customer-managed policy -> its default
       version becomes Allow *:* (for every role it is attached to);
     - iam:PutRolePolicy, or iam:AttachRolePolicy of AdministratorAccess, on a
       role -> that role gets Allow *:* (still within its permissions boundary);
     - iam:DeleteRolePermissionsBoundary, or iam:PutRolePermissionsBoundary to
       AdministratorAccess, on a role -> the role loses its boundary;
     - iam:CreateRole on a role name pattern -> a new role of that name, trusting
       the principal, with the boundary the principal must give it (none if it
       may create one without), every managed policy the principal may attach
       to it attached, and Allow *:* inline if it may PutRolePolicy on it.
   The changes are applied until nothing new is allowed (the reached principals
   grow as roles are opened up).

Queries: a JSON list (file or `-` for stdin) of
  {"principal": "role/NAME", "action": "iam:CreateRole", "resource": "arn:...",
   "conditions": {"iam:PermissionsBoundary": "arn:..."},
   "expect": "CAN" | "CANNOT", "why": "..."}
(`principal` defaults to --principal, `conditions` to {}), or an object
{"queries": [...]} with the same list.

Output: JSON on standard output (or --output FILE), a compact summary on
standard error. Exit 0 when every query answers as expected and the principal
under test has no escalation path (neither in PMapper's graph nor in the what-if
graph), 1 otherwise, 2 on usage errors (bad arguments or queries, unknown
principal, unreachable endpoint).

Runs only against an explicit endpoint (--endpoint or AWS_ENDPOINT_URL), never
against an AWS default endpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
import pmapper_compat  # noqa: E402

DEFAULT_PRINCIPAL = "role/aimodelshare-github-oidc-deployer"
ADMIN_DOCUMENT = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
WHAT_IF_ROUNDS = 4
QUERY_KEYS = {"principal", "action", "resource", "conditions", "expect", "why"}


class UsageError(Exception):
    pass


# --- queries -------------------------------------------------------------------

def load_queries(path: str, default_principal: str) -> list[dict]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        data = json.loads(text)
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"queries {path}: {error}") from error
    if isinstance(data, dict):
        data = data.get("queries")
    if not isinstance(data, list):
        raise UsageError(f"queries {path}: expected a JSON list of queries (or {{\"queries\": [...]}})")
    queries = []
    for index, query in enumerate(data):
        where = f"queries {path}[{index}]"
        if not isinstance(query, dict):
            raise UsageError(f"{where}: not an object")
        unknown = set(query) - QUERY_KEYS
        if unknown:
            raise UsageError(f"{where}: unknown keys {sorted(unknown)}")
        for key in ("action", "resource", "expect"):
            if not isinstance(query.get(key), str) or not query[key]:
                raise UsageError(f"{where}: `{key}` must be a non-empty string")
        if query["expect"] not in ("CAN", "CANNOT"):
            raise UsageError(f"{where}: `expect` must be CAN or CANNOT")
        conditions = query.get("conditions", {})
        if not isinstance(conditions, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in conditions.values()
        ):
            raise UsageError(f"{where}: `conditions` must map context keys to a string or a list of strings")
        queries.append({
            "principal": query.get("principal", default_principal),
            "action": query["action"],
            "resource": query["resource"],
            "conditions": conditions,
            "expect": query["expect"],
            "why": query.get("why", ""),
        })
    return queries


def describe_path(result) -> list[str]:
    from principalmapper.common import Node

    if isinstance(result.edge_list, Node):
        return [f"{result.node.searchable_name()} is an administrative principal"]
    return [edge.describe_edge() for edge in result.edge_list]


def evaluate_queries(graph, queries: list[dict]) -> list[dict]:
    from principalmapper.querying import query_interface

    answers = []
    for query in queries:
        node = graph.get_node_by_searchable_name(query["principal"])
        if node is None:
            raise UsageError(f"principal {query['principal']} is not in the graph ({', '.join(n.searchable_name() for n in graph.nodes)})")
        result = query_interface.search_authorization_for(
            graph, node, query["action"], query["resource"], dict(query["conditions"])
        )
        answer = "CAN" if result.allowed else "CANNOT"
        answers.append({**query, "answer": answer, "ok": answer == query["expect"], "via": describe_path(result) if result.allowed else []})
    return answers


# --- escalation ------------------------------------------------------------------

def escalation_of(graph, principal: str) -> dict:
    from principalmapper.querying.presets.privesc import can_privesc
    from principalmapper.querying.query_utils import get_search_list

    node = graph.get_node_by_searchable_name(principal)
    if node is None:
        raise UsageError(f"principal {principal} is not in the graph")
    if node.is_admin:
        return {"is_admin": True, "can_escalate": True, "admin": principal,
                "path": [f"{principal} is an administrative principal"], "other_paths": []}
    escalates, edges = can_privesc(graph, node)
    if not escalates:
        return {"is_admin": False, "can_escalate": False, "admin": None, "path": [], "other_paths": []}
    # can_privesc gives the first (shortest) path; list one path to every other admin reached too.
    admin = edges[-1].destination
    others, seen = [], {admin.arn}
    for path in get_search_list(graph, node):
        end = path[-1].destination
        if end.is_admin and end.arn not in seen:
            seen.add(end.arn)
            others.append({"admin": end.searchable_name(), "path": [edge.describe_edge() for edge in path]})
    return {"is_admin": False, "can_escalate": True, "admin": admin.searchable_name(),
            "path": [edge.describe_edge() for edge in edges], "other_paths": others}


def account_summary(graph) -> dict:
    from principalmapper.querying.presets.privesc import can_privesc

    escalating = []
    for node in graph.nodes:
        if node.is_admin:
            continue
        escalates, edges = can_privesc(graph, node)
        if escalates:
            escalating.append({"principal": node.searchable_name(), "admin": edges[-1].destination.searchable_name(),
                               "path": [edge.describe_edge() for edge in edges]})
    return {
        "principals": [node.searchable_name() for node in graph.nodes],
        "admins": [node.searchable_name() for node in graph.nodes if node.is_admin],
        "edges": [edge.describe_edge() for edge in graph.edges],
        "can_escalate": escalating,
    }


# --- what-if -------------------------------------------------------------------

def _wildcard(pattern: str) -> re.Pattern:
    return re.compile("^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$", re.IGNORECASE)


def _listify(value) -> list:
    return value if isinstance(value, list) else [value]


def _statements(node) -> list[dict]:
    policies = list(node.attached_policies)
    for group in node.group_memberships:
        policies.extend(group.attached_policies)
    statements = []
    for policy in policies:
        statements.extend(_listify(policy.policy_doc.get("Statement", [])))
    return statements


def _create_role_candidates(node, account: str) -> list[str]:
    """Role ARNs this node's Allow statements for iam:CreateRole name, wildcards made concrete."""
    candidates = []
    for statement in _statements(node):
        if statement.get("Effect") != "Allow" or "Action" not in statement:
            continue
        if not any(_wildcard(a).match("iam:CreateRole") for a in _listify(statement["Action"])):
            continue
        for resource in _listify(statement.get("Resource", [])):
            if resource == "*":
                resource = f"arn:aws:iam::{account}:role/pmapper-whatif-role"
            if ":role/" not in resource:
                continue
            arn = resource.replace("*", "whatif").replace("?", "x")
            if arn not in candidates:
                candidates.append(arn)
    return candidates


def _boundary_candidates(node) -> list[str]:
    """iam:PermissionsBoundary values named in this node's policy conditions."""
    values = []
    for statement in _statements(node):
        for block in (statement.get("Condition") or {}).values():
            for key, value in block.items():
                if key.lower() == "iam:permissionsboundary":
                    values.extend(v for v in _listify(value) if "*" not in v and "?" not in v and v not in values)
    return values


def _can(node, action: str, resource: str, context: dict) -> bool:
    from principalmapper.querying import query_interface

    return query_interface.local_check_authorization_full(node, action, resource, dict(context))


def _plan_changes(graph, principal_node, overrides: pmapper_compat.GraphOverrides, changes: list[str]) -> bool:
    """Adds to `overrides` every change the principal or a principal it reaches may make. True if any was new."""
    from principalmapper.querying.query_utils import get_search_list

    account = graph.metadata["account_id"]
    actors = [principal_node] + [path[-1].destination for path in get_search_list(graph, principal_node)]
    seen = set()
    actors = [a for a in actors if not (a.arn in seen or seen.add(a.arn))]
    managed = [p for p in graph.policies if ":policy/" in p.arn and ":aws:policy/" not in p.arn]
    attached_aws = sorted({p.arn for n in graph.nodes for p in n.attached_policies if ":aws:policy/" in p.arn})
    attachable = [p.arn for p in managed] + [a for a in [ADMIN_POLICY_ARN] + attached_aws if a not in {p.arn for p in managed}]
    existing = {n.arn for n in graph.nodes}
    new = False
    for actor in actors:
        who = actor.searchable_name()
        for policy in managed:
            if policy.arn not in overrides.policy_documents and _can(actor, "iam:CreatePolicyVersion", policy.arn, {}):
                overrides.policy_documents[policy.arn] = ADMIN_DOCUMENT
                changes.append(f"{who} may iam:CreatePolicyVersion on {policy.arn}: its default version becomes Allow *:*")
                new = True
        for role in graph.nodes:
            if ":role/" not in role.arn:
                continue
            name = role.searchable_name()
            boundary = role.permissions_boundary.arn if role.permissions_boundary is not None else None
            context = {"iam:PermissionsBoundary": boundary} if boundary else {}
            if role.arn not in overrides.role_inline_policies:
                how = None
                if _can(actor, "iam:PutRolePolicy", role.arn, context):
                    how = "iam:PutRolePolicy"
                elif _can(actor, "iam:AttachRolePolicy", role.arn, {**context, "iam:PolicyARN": ADMIN_POLICY_ARN}):
                    how = "iam:AttachRolePolicy of AdministratorAccess"
                if how:
                    overrides.role_inline_policies[role.arn] = [("pmapper-whatif-admin", ADMIN_DOCUMENT)]
                    changes.append(f"{who} may {how} on {name}: it gets Allow *:* (within its boundary)")
                    new = True
            if boundary and role.arn not in overrides.role_boundaries:
                how = None
                if _can(actor, "iam:DeleteRolePermissionsBoundary", role.arn, context):
                    how = "iam:DeleteRolePermissionsBoundary"
                elif _can(actor, "iam:PutRolePermissionsBoundary", role.arn, {"iam:PermissionsBoundary": ADMIN_POLICY_ARN}):
                    how = "iam:PutRolePermissionsBoundary to AdministratorAccess"
                if how:
                    overrides.role_boundaries[role.arn] = None
                    changes.append(f"{who} may {how} on {name}: it loses its boundary {boundary}")
                    new = True
        known_new_roles = {r["Arn"] for r in overrides.extra_roles}
        for arn in _create_role_candidates(actor, account):
            if arn in existing or arn in known_new_roles:
                continue
            boundary = None
            if not _can(actor, "iam:CreateRole", arn, {}):
                policies_by_arn = {p.arn for p in graph.policies}
                boundary = next((b for b in _boundary_candidates(actor)
                                 if b in policies_by_arn and _can(actor, "iam:CreateRole", arn, {"iam:PermissionsBoundary": b})), None)
                if boundary is None:
                    continue
            context = {"iam:PermissionsBoundary": boundary} if boundary else {}
            attach = [p for p in attachable if _can(actor, "iam:AttachRolePolicy", arn, {**context, "iam:PolicyARN": p})]
            role = pmapper_compat.hypothetical_role(arn, principal_node.arn, attach, boundary)
            inline = _can(actor, "iam:PutRolePolicy", arn, context)
            if inline:
                role["RolePolicyList"].append({"PolicyName": "pmapper-whatif-admin", "PolicyDocument": ADMIN_DOCUMENT})
            overrides.extra_roles.append(role)
            changes.append(
                f"{who} may iam:CreateRole {arn.rsplit('/', 1)[-1]} "
                + (f"with boundary {boundary}" if boundary else "without a permissions boundary")
                + f", trusting {principal_node.searchable_name()}, with {', '.join(attach) or 'no managed policy'} attached"
                + (" and Allow *:* inline" if inline else "")
            )
            new = True
    return new


def what_if(graph, principal: str, endpoint: str, region: str) -> dict:
    overrides = pmapper_compat.GraphOverrides()
    changes: list[str] = []
    current = graph
    result = escalation_of(graph, principal)
    rounds = 0
    # Stops at the first round whose graph has an escalation path: the changes
    # listed are then the ones that path needs (and some that it may not).
    while not result["can_escalate"] and rounds < WHAT_IF_ROUNDS:
        node = current.get_node_by_searchable_name(principal)
        if node is None or not _plan_changes(current, node, overrides, changes):
            break
        current = pmapper_compat.build_graph(endpoint, region, overrides)
        result = escalation_of(current, principal)
        rounds += 1
    return {"assumed_changes": changes, "rounds": rounds, **result}


# --- main ----------------------------------------------------------------------

def summary_lines(report: dict) -> list[str]:
    lines = [f"iam_verdict: {report['principal']} at {report['endpoint']} (PMapper {report['pmapper_version']})"]
    account = report["account"]
    lines.append(f"  graph: {len(account['principals'])} principals, admins: {', '.join(account['admins']) or 'none'}")
    for edge in account["edges"]:
        lines.append(f"  edge: {edge}")
    for answer in report["queries"]:
        mark = "ok  " if answer["ok"] else "FAIL"
        context = f" {json.dumps(answer['conditions'], sort_keys=True)}" if answer["conditions"] else ""
        expected = "" if answer["ok"] else f" (expected {answer['expect']})"
        lines.append(f"  {mark} {answer['answer']:6} {answer['principal']} {answer['action']} {answer['resource']}{context}{expected}")
        if not answer["ok"]:
            if answer["why"]:
                lines.append(f"         why: {answer['why']}")
            for step in answer["via"]:
                lines.append(f"         via: {step}")
    for label, escalation in (("PMapper", report["escalation"]), ("what-if", report.get("what_if"))):
        if escalation is None:
            continue
        for change in escalation.get("assumed_changes", []):
            lines.append(f"  what-if assumes: {change}")
        if escalation["can_escalate"]:
            lines.append(f"  ESCALATION ({label}): {report['principal']} reaches admin {escalation['admin']}")
            for step in escalation["path"]:
                lines.append(f"     {step}")
            for other in escalation.get("other_paths", []):
                lines.append(f"  ESCALATION ({label}): {report['principal']} reaches admin {other['admin']}")
                for step in other["path"]:
                    lines.append(f"     {step}")
        else:
            lines.append(f"  no escalation ({label})")
    lines.append(f"iam_verdict: {report['verdict']}" + (f": {'; '.join(report['failures'])}" if report["failures"] else ""))
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="the emulator's endpoint (default: $AWS_ENDPOINT_URL); required")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--queries", required=True, help="JSON file of queries, or - for standard input")
    parser.add_argument("--principal", default=DEFAULT_PRINCIPAL,
                        help=f"principal under test, as role/NAME or user/NAME (default {DEFAULT_PRINCIPAL})")
    parser.add_argument("--no-what-if", action="store_true", help="only PMapper's own escalation analysis")
    parser.add_argument("--output", help="write the JSON report here instead of standard output")
    args = parser.parse_args(argv)
    if not args.endpoint:
        parser.print_usage(sys.stderr)
        print("iam_verdict: no endpoint: pass --endpoint or set AWS_ENDPOINT_URL (the emulator's)", file=sys.stderr)
        return 2
    try:
        queries = load_queries(args.queries, args.principal)
        pmapper_compat.load()
        try:
            graph = pmapper_compat.build_graph(args.endpoint, args.region)
        except Exception as error:  # botocore's connection and client errors
            if type(error).__module__.startswith(("botocore", "urllib3")):
                raise UsageError(f"cannot build the graph from {args.endpoint}: {error}") from error
            raise
        answers = evaluate_queries(graph, queries)
        report: dict[str, Any] = {
            "endpoint": args.endpoint,
            "region": args.region,
            "principal": args.principal,
            "pmapper_version": pmapper_compat.PMAPPER_VERSION,
            "queries": answers,
            "escalation": escalation_of(graph, args.principal),
            "what_if": None if args.no_what_if else what_if(graph, args.principal, args.endpoint, args.region),
            "account": account_summary(graph),
        }
    except UsageError as error:
        print(f"iam_verdict: {error}", file=sys.stderr)
        return 2
    failures = []
    wrong = [a for a in answers if not a["ok"]]
    if wrong:
        failures.append(f"{len(wrong)} of {len(answers)} queries answered against expectation")
    if report["escalation"]["can_escalate"]:
        failures.append(f"PMapper: {args.principal} can escalate to {report['escalation']['admin']}")
    if report["what_if"] and report["what_if"]["can_escalate"]:
        failures.append(f"what-if: {args.principal} can escalate to {report['what_if']['admin']}")
    report["verdict"] = "FAIL" if failures else "PASS"
    report["failures"] = failures
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    print("\n".join(summary_lines(report)), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
