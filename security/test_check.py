#!/usr/bin/env python3
"""The IAM check's own tests: it must fail on the pre-boundary design and pass on a model of the fix.

Run with security/selftest (which installs the venvs first). Each test deploys
with the deployer binary onto its own moto emulator through check_deployer.py
and reads the JSON reports. The pre-boundary state is put back from the saved
fixtures (--before-boundary), so these tests hold whatever the deployer binary
is, before or after the fix lands. Ends with the line `N passed, N failed`.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEPLOY = "role/aimodelshare-github-oidc-deployer"
LAMBDA = "role/aimodelshare-playground-dev-lambda-role"


def check(*flags: str) -> tuple[int, dict, dict]:
    with tempfile.TemporaryDirectory() as reports:
        code = subprocess.run([sys.executable, str(HERE / "check_deployer.py"), "--report-dir", reports, *flags],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
        verdict = json.loads((Path(reports) / "verdict.json").read_text()) if (Path(reports) / "verdict.json").exists() else {}
        lint = json.loads((Path(reports) / "lint.json").read_text()) if (Path(reports) / "lint.json").exists() else {}
    return code, verdict, lint


# The queries about the boundary design (IAM, state), as against those about the
# tag scoping of HTTP APIs and the Lambda/Logs fixes that came after it.
BOUNDARY_SERVICES = ("iam:", "s3:", "dynamodb:")
# Actions the deployer took up after the pre-boundary policy was saved (Time to
# Live, for sign-in sessions; PutItem, for the backfill that ranks users): that
# policy never had them, so their queries say nothing of the boundary and are
# left out of its tests.
NEWER_THAN_THE_FIXTURE = ("dynamodb:UpdateTimeToLive", "dynamodb:DescribeTimeToLive", "dynamodb:PutItem")


def failed_queries(verdict: dict, services=BOUNDARY_SERVICES) -> set:
    return {(q["action"], q["resource"].rsplit("/", 1)[-1], json.dumps(q["conditions"], sort_keys=True))
            for q in verdict["queries"]
            if not q["ok"] and q["action"].startswith(services) and q["action"] not in NEWER_THAN_THE_FIXTURE}


def boundary_queries_file(directory: str) -> str:
    """fixtures/queries.json without the queries the boundary model does not model."""
    queries = json.loads((HERE / "fixtures/queries.json").read_text())
    path = Path(directory) / "boundary-queries.json"
    path.write_text(json.dumps([q for q in queries if q["action"].startswith(BOUNDARY_SERVICES)
                                and q["action"] not in NEWER_THAN_THE_FIXTURE]))
    return str(path)


def test_before_boundary_fails():
    code, verdict, lint = check("--before-boundary")
    assert code == 1, code
    assert verdict["verdict"] == "FAIL"
    boundary = "arn:aws:iam::123456789012:policy/aimodelshare-playground-execution-boundary"
    ddb = "arn:aws:iam::123456789012:policy/aimodelshare-playground-dev-ddb-rw"
    admin = "arn:aws:iam::aws:policy/AdministratorAccess"
    assert failed_queries(verdict) == {
        ("iam:CreateRole", "aimodelshare-playground-intruder-lambda-role", "{}"),
        ("iam:CreateRole", "aimodelshare-playground-intruder-lambda-role", json.dumps({"iam:PermissionsBoundary": admin})),
        ("iam:PutRolePermissionsBoundary", "aimodelshare-playground-dev-lambda-role",
         json.dumps({"iam:PermissionsBoundary": boundary})),
        ("iam:AttachRolePolicy", "aimodelshare-playground-dev-lambda-role", json.dumps({"iam:PolicyARN": ddb})),
    }, failed_queries(verdict)
    # The pre-boundary policy scoped HTTP APIs by region only, let AddPermission name any
    # principal, and scoped the two list actions to ARNs (denied on AWS).
    others = failed_queries(verdict, ("apigateway:", "lambda:", "logs:"))
    for expected in [("apigateway:POST", "apis", "{}"),
                     ("apigateway:DELETE", "a1b2c3d4e5", json.dumps({"aws:ResourceTag/managed-by": "another-team"})),
                     ("lambda:AddPermission", "arn:aws:lambda:us-east-1:123456789012:function:aimodelshare-playground-dev-api",
                      json.dumps({"lambda:Principal": "*"})),
                     ("lambda:ListLayerVersions", "*", "{}"), ("logs:DescribeLogGroups", "*", "{}")]:
        assert expected in others, (expected, others)
    assert not verdict["escalation"]["can_escalate"], "PMapper alone sees no admin before the table policy is rewritten"
    assert verdict["what_if"]["can_escalate"] and verdict["what_if"]["admin"] == LAMBDA, verdict["what_if"]
    assert any("iam:CreatePolicyVersion" in c and "ddb-rw" in c for c in verdict["what_if"]["assumed_changes"])
    assert any("without a permissions boundary" in c for c in verdict["what_if"]["assumed_changes"])
    deploy = next(d for d in lint["documents"] if d["name"] == "policy/aimodelshare-github-actions-deployment")
    open_ids = {f["id"] for f in deploy["findings"] if f["allowed"] is None}
    assert "cloudsplaining/PrivilegeEscalation/CreateNewPolicyVersion" in open_ids
    assert "parliament/PRIVILEGE_ESCALATION/CreateNewPolicyVersion" in open_ids
    assert lint["verdict"] == "FAIL"


def test_rewritten_table_policy_is_found_by_pmapper_alone():
    code, verdict, _ = check("--before-boundary", "--simulate-attack", "--no-what-if", "--no-lint")
    assert code == 1, code
    assert verdict["what_if"] is None
    assert LAMBDA in verdict["account"]["admins"]
    escalation = verdict["escalation"]
    assert escalation["can_escalate"] and escalation["admin"] == LAMBDA, escalation
    assert escalation["path"] == [f"{DEPLOY} can update the trust document to access {LAMBDA}"], escalation
    assert any("can use Lambda to edit an existing function" in e for e in verdict["account"]["edges"])
    canary = next(q for q in verdict["queries"] if q["action"] == "iam:CreateUser")
    assert canary["answer"] == "CAN" and canary["via"], canary


def test_model_of_the_fix_passes():
    with tempfile.TemporaryDirectory() as directory:
        _, verdict, _ = check("--model-fix", "--no-lint", "--queries", boundary_queries_file(directory))
    assert verdict["verdict"] == "PASS", [q for q in verdict["queries"] if not q["ok"]] or verdict["what_if"]
    assert any("with boundary" in c for c in verdict["what_if"]["assumed_changes"]), verdict["what_if"]
    assert not verdict["what_if"]["can_escalate"]


def test_usage_errors_exit_2():
    bad = subprocess.run([sys.executable, str(HERE / "iam_verdict.py"), "--endpoint", "http://127.0.0.1:9",
                          "--queries", "-"], input='[{"action": "iam:CreateRole"}]', text=True,
                         capture_output=True)
    assert bad.returncode == 2, (bad.returncode, bad.stderr)
    unreachable = subprocess.run([sys.executable, str(HERE / "iam_verdict.py"), "--endpoint", "http://127.0.0.1:9",
                                  "--queries", str(HERE / "fixtures/queries.json")], capture_output=True, text=True)
    assert unreachable.returncode == 2, (unreachable.returncode, unreachable.stderr[-500:])
    no_input = subprocess.run([sys.executable, str(HERE / "lint_policies.py")], capture_output=True, text=True)
    assert no_input.returncode == 2, no_input.returncode


def test_lint_of_the_saved_policy_file():
    result = subprocess.run([sys.executable, str(HERE / "lint_policies.py"), "--output", "/dev/null",
                             str(HERE / "fixtures/deploy-policy-before-boundary.json")], capture_output=True, text=True)
    assert result.returncode == 1, result.returncode
    assert "allowed parliament/INVALID_ARN/arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole" in result.stderr
    assert "FINDING cloudsplaining/PrivilegeEscalation/CreateNewPolicyVersion" in result.stderr


def test_justifications_that_need_the_boundary_do_not_apply_without_it():
    # The shipped allowlist, its deploy-policy entries aimed at the saved pre-boundary policy file.
    allowlist = json.loads((HERE / "allowed-findings.json").read_text())
    for entry in allowlist["allowed"]:
        entry["document"] = entry["document"].replace("policy/aimodelshare-github-actions-deployment", "file/*")
    with tempfile.NamedTemporaryFile("w", suffix=".json") as file, tempfile.TemporaryDirectory() as reports:
        json.dump(allowlist, file)
        file.flush()
        report = Path(reports) / "lint.json"
        result = subprocess.run([sys.executable, str(HERE / "lint_policies.py"), "--allowlist", file.name,
                                 "--output", str(report), str(HERE / "fixtures/deploy-policy-before-boundary.json")],
                                capture_output=True, text=True)
        lint = json.loads(report.read_text())
    assert result.returncode == 1, (result.returncode, result.stderr[-500:])
    findings = {f["id"]: f["allowed"] for f in lint["documents"][0]["findings"]}
    for finding in ("cloudsplaining/PrivilegeEscalation/CreateNewPolicyVersion",
                    "cloudsplaining/ResourceExposure/iam:CreateRole",
                    "parliament/PRIVILEGE_ESCALATION/CreateNewPolicyVersion"):
        assert finding in findings and findings[finding] is None, (finding, findings.get(finding, "absent"))
    # ... while a justification that does not rest on the boundary still applies.
    assert findings.get("cloudsplaining/InfrastructureModification/lambda:UpdateFunctionCode"), findings
    unused = {entry["finding"] for entry in lint["unused_allowlist_entries"]}
    assert "cloudsplaining/InfrastructureModification/iam:*" in unused, unused


def main() -> int:
    tests = [(name, fn) for name, fn in globals().items() if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:  # noqa: BLE001 -- report every failure, run every test
            failed += 1
            print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
        else:
            passed += 1
            print(f"ok   {name}", flush=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
