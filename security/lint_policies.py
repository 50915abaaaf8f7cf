#!/usr/bin/env python3
"""Lint IAM policy documents with cloudsplaining and parliament; fail on any finding not allowlisted.

Documents come from JSON files given as arguments, and/or from IAM behind an
emulator endpoint (--endpoint, or AWS_ENDPOINT_URL with --from-iam):
  policy/NAME                 every customer-managed policy's default version
  aws-policy/PATH/NAME        every AWS-managed policy attached to a role (their
                              documents are what the roles get: not filtered out)
  role/NAME/trust             every role's trust policy
  role/NAME/inline/POLICY     every role's inline policies
  file/BASENAME               a file given on the command line

Each document goes through
  - cloudsplaining's `scan-policy-file` scan with the equivalent of `-aR`
    (`--flag-all-risky-actions`: risky actions are flagged even when resource
    ARNs or conditions constrain them) and an exclusions config that excludes
    nothing (cloudsplaining's default one skips policies named like
    AWS-managed/service-role ones); its Python entry point `scan_policy` is
    called, as the CLI does, to get structured results;
  - parliament's `analyze_policy_string` with every finding of severity INFO and
    up (the CLI's default is LOW) and the community auditors (privilege
    escalation, permissions management, credentials exposure...).

A finding's id is `TOOL/CATEGORY/SUBJECT`, for example
`cloudsplaining/PrivilegeEscalation/CreateNewPolicyVersion`,
`cloudsplaining/ResourceExposure/iam:PassRole`,
`parliament/RESOURCE_MISMATCH/lambda:ListLayerVersions`.

Allowlist (--allowlist, default security/allowed-findings.json):
  {"allowed": [{"document": "role/*/trust", "finding": "parliament/MALFORMED/*",
                "justification": "why this finding is acceptable"}]}
`document` and `finding` are shell-style patterns (fnmatch, case-sensitive);
the justification must be non-empty. Entries that match nothing are reported.

An entry may also say `"when": "NAME"`: it then applies only to a document that
has every statement listed under `"conditions": {"NAME": [...]}` at the top of
the allowlist. Each listed statement is a partial one: every key it names must
be in some statement of the document, strings matching as fnmatch patterns, a
list matching when each of its items matches an item of the document's value,
objects key by key. So a finding that is acceptable *only because* of a
statement (privilege escalation through execution roles, acceptable only while
they can be created and changed only with the permissions boundary) stays open
on a document without it. (That no other statement undoes it is for
iam_verdict.py to judge.)

Exit 0 when every finding is allowlisted, 1 otherwise, 2 on usage errors.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
DEFAULT_ALLOWLIST = HERE / "allowed-findings.json"
CLOUDSPLAINING_CATEGORIES = [
    "PrivilegeEscalation", "ResourceExposure", "DataExfiltration", "CredentialsExposure",
    "ServiceWildcard", "InfrastructureModification",
]


class UsageError(Exception):
    pass


# --- documents -------------------------------------------------------------------

def documents_from_files(paths: list[str]) -> list[dict]:
    documents = []
    for path in paths:
        try:
            document = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise UsageError(f"{path}: {error}") from error
        if not isinstance(document, dict) or "Statement" not in document:
            raise UsageError(f"{path}: not an IAM policy document (no Statement)")
        kind = "trust" if _looks_like_trust_policy(document) else "identity"
        documents.append({"name": f"file/{Path(path).name}", "kind": kind, "source": path, "document": document})
    return documents


def _looks_like_trust_policy(document: dict) -> bool:
    statements = document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]
    return all("Principal" in s and "Resource" not in s and "NotResource" not in s for s in statements)


def documents_from_iam(endpoint: str, region: str) -> list[dict]:
    import boto3

    iam = boto3.client("iam", endpoint_url=endpoint, region_name=region,
                       aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID") or "testing",
                       aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY") or "testing")
    documents = []
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            documents.append({"name": f"policy/{policy['PolicyName']}", "kind": "identity",
                              "source": f"{policy['Arn']} {policy['DefaultVersionId']}",
                              "document": version["PolicyVersion"]["Document"]})
    aws_managed = set()
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            name = role["RoleName"]
            documents.append({"name": f"role/{name}/trust", "kind": "trust", "source": role["Arn"],
                              "document": role["AssumeRolePolicyDocument"]})
            for inline_page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
                for policy_name in inline_page["PolicyNames"]:
                    inline = iam.get_role_policy(RoleName=name, PolicyName=policy_name)
                    documents.append({"name": f"role/{name}/inline/{policy_name}", "kind": "identity",
                                      "source": role["Arn"], "document": inline["PolicyDocument"]})
            for attached_page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=name):
                for attached in attached_page["AttachedPolicies"]:
                    if ":aws:policy/" in attached["PolicyArn"]:
                        aws_managed.add(attached["PolicyArn"])
    for arn in sorted(aws_managed):
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        version = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        documents.append({"name": "aws-policy/" + arn.split(":policy/", 1)[1], "kind": "identity",
                          "source": f"{arn} {policy['DefaultVersionId']}", "document": version["PolicyVersion"]["Document"]})
    return documents


# --- the linters -------------------------------------------------------------------

def cloudsplaining_findings(document: dict) -> list[dict]:
    from cloudsplaining.command.scan_policy_file import scan_policy
    from cloudsplaining.shared.exclusions import DEFAULT_EXCLUSIONS_CONFIG

    # Exclude nothing; keep the default *inclusions* (read actions such as
    # s3:GetObject that count as data exfiltration).
    exclusions = {"policies": [""], "roles": [""], "users": [""], "groups": [""],
                  "include-actions": list(DEFAULT_EXCLUSIONS_CONFIG.get("include-actions", [])),
                  "exclude-actions": [""]}
    results = scan_policy(document, exclusions, flag_conditional_statements=True, flag_resource_arn_statements=True)
    findings = []
    for category in CLOUDSPLAINING_CATEGORIES:
        block = results.get(category) or {}
        severity = block.get("severity", "")
        for item in block.get("findings", []):
            if isinstance(item, dict):  # PrivilegeEscalation: {"type": method, "actions": [...]}
                findings.append({"id": f"cloudsplaining/{category}/{item.get('type')}", "severity": severity,
                                 "detail": ", ".join(item.get("actions", []))})
            else:
                findings.append({"id": f"cloudsplaining/{category}/{item}", "severity": severity, "detail": ""})
    return findings


_parliament_configured = False


def parliament_findings(document: dict, name: str) -> list[dict]:
    global _parliament_configured
    import parliament
    from parliament.cli import is_finding_filtered

    if not _parliament_configured:
        override = Path(parliament.__file__).parent / "community_auditors" / "config_override.yaml"
        parliament.override_config(override)
        _parliament_configured = True
    findings = _parliament_run(parliament, is_finding_filtered, document, name)
    if any(f["id"].startswith(f"parliament/INVALID_ARN/{AWS_MANAGED_POLICY_PREFIX}") for f in findings):
        # parliament rejects AWS-managed policy ARNs (account `aws`, not 12 digits)
        # as INVALID_ARN, marks the statement invalid, and then stops: none of its
        # pattern checks or auditors run on the *whole* policy. Run it again with
        # those ARNs read as account 000000000000, so the rest is still analysed;
        # the INVALID_ARN finding itself stays in the report (allowlisted as a
        # known false positive).
        stand_in = json.loads(json.dumps(document).replace(AWS_MANAGED_POLICY_PREFIX, AWS_MANAGED_STAND_IN))
        seen = {f["id"] for f in findings}
        for finding in _parliament_run(parliament, is_finding_filtered, stand_in, name):
            finding["id"] = finding["id"].replace(AWS_MANAGED_STAND_IN, AWS_MANAGED_POLICY_PREFIX)
            if finding["id"] not in seen:
                finding["detail"] += " (found once AWS-managed policy ARNs were read as account 000000000000)"
                findings.append(finding)
                seen.add(finding["id"])
    return findings


AWS_MANAGED_POLICY_PREFIX = "arn:aws:iam::aws:policy/"
AWS_MANAGED_STAND_IN = "arn:aws:iam::000000000000:policy/"


def _parliament_run(parliament, is_finding_filtered, document: dict, name: str) -> list[dict]:
    policy = parliament.analyze_policy_string(json.dumps(document, indent=2), name, include_community_auditors=True,
                                              config=parliament.config)
    findings = []
    for finding in policy.findings:
        finding = parliament.enhance_finding(finding)
        if is_finding_filtered(finding, "INFO"):
            continue
        findings.append({"id": f"parliament/{finding.issue}/{_parliament_subject(finding)}",
                         "severity": finding.severity, "detail": f"{finding.title}: {_short(finding.detail or finding.location)}"})
    return findings


def _parliament_subject(finding) -> str:
    detail, location = finding.detail, finding.location or {}
    if isinstance(detail, list) and detail and all(isinstance(d, dict) and "action" in d for d in detail):
        return ",".join(sorted({d["action"] for d in detail}))
    if isinstance(detail, dict) and "action" in detail:
        return str(detail["action"])
    if location.get("type"):  # PRIVILEGE_ESCALATION: the method
        return str(location["type"])
    if location.get("string"):
        return str(location["string"])
    if isinstance(detail, list) and detail and all(isinstance(d, str) for d in detail):
        return ",".join(detail)
    if isinstance(detail, str) and detail and len(detail) <= 120:
        return detail
    if location.get("actions"):  # PERMISSIONS_MANAGEMENT_ACTIONS, CREDENTIALS_EXPOSURE: all of them
        return ",".join(sorted(set(location["actions"])))
    return "-"


def _short(value: Any, limit: int = 300) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- allowlist ---------------------------------------------------------------------

def load_allowlist(path: Optional[Path]) -> list[dict]:
    """The allowlist's entries, each with its `when` statements (if any) under `_when`."""
    if path is None or not path.exists():
        if path is not None and path != DEFAULT_ALLOWLIST:
            raise UsageError(f"allowlist {path} does not exist")
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise UsageError(f"allowlist {path}: {error}") from error
    entries = data.get("allowed") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise UsageError(f'allowlist {path}: expected {{"allowed": [...]}}')
    conditions = data.get("conditions", {})
    if not isinstance(conditions, dict) or not all(
            isinstance(statements, list) and statements and all(isinstance(s, dict) and s for s in statements)
            for statements in conditions.values()):
        raise UsageError(f'allowlist {path}: "conditions" must map names to non-empty lists of partial statements')
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(k), str) and entry[k].strip()
                                                  for k in ("document", "finding", "justification")):
            raise UsageError(f"allowlist {path}[{index}]: needs non-empty document, finding and justification")
        if "when" in entry:
            if entry["when"] not in conditions:
                raise UsageError(f"allowlist {path}[{index}]: `when` names no entry of \"conditions\": {entry['when']!r}")
            entry["_when"] = conditions[entry["when"]]
    return entries


def _statements_of(document: dict) -> list:
    statements = document.get("Statement", [])
    return statements if isinstance(statements, list) else [statements]


def _partial_match(pattern: Any, value: Any) -> bool:
    """Whether `value` (part of a statement) has everything `pattern` names."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(key in value and _partial_match(item, value[key])
                                               for key, item in pattern.items())
    values = value if isinstance(value, list) else [value]
    if isinstance(pattern, list):
        return all(any(_partial_match(item, v) for v in values) for item in pattern)
    return any(isinstance(v, str) and fnmatch.fnmatchcase(v, str(pattern)) for v in values)


def has_statements(document: dict, required: list[dict]) -> bool:
    """Whether every partial statement in `required` matches some statement of `document`."""
    statements = _statements_of(document)
    return all(any(_partial_match(wanted, statement) for statement in statements) for wanted in required)


def justification_for(entries: list[dict], document: str, finding: str, used: set,
                      content: Optional[dict] = None) -> Optional[str]:
    for index, entry in enumerate(entries):
        if fnmatch.fnmatchcase(document, entry["document"]) and fnmatch.fnmatchcase(finding, entry["finding"]):
            if "_when" in entry and not has_statements(content or {}, entry["_when"]):
                continue
            used.add(index)
            return entry["justification"]
    return None


# --- main ----------------------------------------------------------------------------

def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="policy document JSON files")
    parser.add_argument("--endpoint", help="pull the documents from IAM at this emulator endpoint")
    parser.add_argument("--from-iam", action="store_true", help="pull from IAM at $AWS_ENDPOINT_URL")
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    parser.add_argument("--allowlist", type=Path, default=DEFAULT_ALLOWLIST)
    parser.add_argument("--output", help="write the JSON report here (default: standard output)")
    args = parser.parse_args(argv)
    endpoint = args.endpoint or (os.environ.get("AWS_ENDPOINT_URL") if args.from_iam else None)
    if args.from_iam and not endpoint:
        print("lint_policies: --from-iam needs AWS_ENDPOINT_URL (the emulator's)", file=sys.stderr)
        return 2
    if not args.files and not endpoint:
        parser.print_usage(sys.stderr)
        print("lint_policies: give policy files, --endpoint URL, or --from-iam", file=sys.stderr)
        return 2
    try:
        allowlist = load_allowlist(args.allowlist)
        documents = documents_from_files(args.files)
        if endpoint:
            try:
                documents += documents_from_iam(endpoint, args.region)
            except Exception as error:
                if type(error).__module__.startswith(("botocore", "urllib3")):
                    raise UsageError(f"cannot read IAM at {endpoint}: {error}") from error
                raise
    except UsageError as error:
        print(f"lint_policies: {error}", file=sys.stderr)
        return 2

    used: set = set()
    report_documents = []
    lines = []
    blocking = 0
    for document in documents:
        findings = cloudsplaining_findings(document["document"]) + parliament_findings(document["document"], document["name"])
        for finding in findings:
            finding["allowed"] = justification_for(allowlist, document["name"], finding["id"], used,
                                                   document["document"])
            blocking += finding["allowed"] is None
        report_documents.append({**{k: document[k] for k in ("name", "kind", "source")}, "findings": findings})
        open_count = sum(f["allowed"] is None for f in findings)
        lines.append(f"== {document['name']} ({document['kind']}, {document['source']}): "
                     f"{len(findings)} findings, {open_count} not allowlisted")
        for finding in findings:
            mark = "allowed" if finding["allowed"] else "FINDING"
            detail = f"  [{finding['detail']}]" if finding["detail"] else ""
            lines.append(f"  {mark} {finding['id']} ({finding['severity']}){detail}")
    unused = [{k: v for k, v in entry.items() if k != "_when"}
              for index, entry in enumerate(allowlist) if index not in used]
    for entry in unused:
        lines.append(f"  note: allowlist entry matched nothing: {entry['document']} {entry['finding']}")
    verdict = "FAIL" if blocking else "PASS"
    lines.append(f"lint_policies: {verdict}: {len(documents)} documents, "
                 f"{sum(len(d['findings']) for d in report_documents)} findings, {blocking} not allowlisted")
    report = {"documents": report_documents, "unused_allowlist_entries": unused, "verdict": verdict,
              "not_allowlisted": blocking}
    text = json.dumps(report, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        print(text)
    print("\n".join(lines), file=sys.stderr)
    return 1 if blocking else 0


if __name__ == "__main__":
    sys.exit(main())
