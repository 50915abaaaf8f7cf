#!/usr/bin/env python3
"""Deploy with the deployer onto a fresh moto emulator, then judge its IAM (iam_verdict + lint_policies).

Usage: check_deployer.py [--deployer PATH] [--before-boundary] [--simulate-attack | --model-fix]
                         [--no-what-if] [--no-lint] [--report-dir DIR] [--save-deploy-policy FILE]

1. starts moto with the repo's launcher (emulator/moto_server.py --port 0
   --exit-with-stdin, MOTO_IAM_LOAD_MANAGED_POLICIES=true), from .venv/;
2. in a temporary directory holding the repo's deployer.toml and fn.zip (one
   entry `bootstrap`, mode 0755, a copy of the x86_64 ELF /bin/true), runs
   `deployer bootstrap --auto-approve --var github_repository=octo-org/playground` then
   `deployer apply --env dev --auto-approve --artifact fn.zip`
   (AWS_ENDPOINT_URL=<moto>, testing credentials, DEPLOYER_SKIP_HEALTH_CHECK=true and DEPLOYER_SKIP_PRE_TRAFFIC_CHECK=true);
3. optionally changes IAM: --before-boundary puts the saved pre-boundary
   deploy policy back and removes the execution role's boundary
   (fixtures/restore_before_boundary.py: "today", whatever the binary is);
   --simulate-attack rewrites the dev table policy to
   Allow *:* (fixtures/simulate_policy_rewrite.py, escalation (1)); --model-fix
   puts a hand-written model of the boundary fix in place
   (fixtures/model_boundary_fix.py, to show the check can pass);
4. runs iam_verdict.py with fixtures/queries.json once per role GitHub
   Actions assumes (the deploy role, the read-only plan role, then the
   preview role of pull requests), and
   lint_policies.py on every document in IAM, each writing its JSON report
   into --report-dir.

The deployer binary: --deployer PATH, else $DEPLOYER, else the first that
exists of $CARGO_TARGET_DIR/debug/deployer (when that variable is set) and
target/debug/deployer in the repository (what `cargo build -p deployer` makes).

Exit status: 2 if a step could not run, else 1 if the verdict or the lint
failed, else 0. The emulator is stopped in every case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EMULATOR_PYTHON = ROOT / ".venv/bin/python"
MOTO_LAUNCHER = ROOT / "emulator/moto_server.py"


class StepFailed(Exception):
    pass


def deployer_candidates() -> list[Path]:
    """Where `cargo build -p deployer` puts the binary: $CARGO_TARGET_DIR (relative to the
    current directory, as cargo reads it) when set, then the repository's target/."""
    candidates = []
    if os.environ.get("CARGO_TARGET_DIR"):
        candidates.append(Path(os.environ["CARGO_TARGET_DIR"]).resolve() / "debug/deployer")
    candidates.append(ROOT / "target/debug/deployer")
    return candidates


def default_deployer() -> Optional[Path]:
    if os.environ.get("DEPLOYER"):
        return Path(os.environ["DEPLOYER"])
    return next((path for path in deployer_candidates() if path.is_file()), None)


def log(message: str) -> None:
    print(f"check_deployer: {message}", file=sys.stderr, flush=True)


def start_moto() -> tuple[subprocess.Popen, str]:
    if not EMULATOR_PYTHON.exists():
        raise StepFailed(f"{EMULATOR_PYTHON} missing: run scripts/setup-emulator")
    env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
    process = subprocess.Popen(
        [str(EMULATOR_PYTHON), str(MOTO_LAUNCHER), "--host", "127.0.0.1", "--port", "0", "--exit-with-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    line = process.stdout.readline()  # the launcher prints READY once bound, or exits
    if not line.startswith("READY "):
        process.kill()
        raise StepFailed(f"moto did not start (said {line!r})")
    return process, line.split(" ", 1)[1].strip()


def stop_moto(process: subprocess.Popen) -> None:
    try:
        process.stdin.close()  # --exit-with-stdin
        process.wait(timeout=10)
    except (subprocess.TimeoutExpired, OSError):
        process.kill()
        process.wait()


def make_artifact(path: Path) -> None:
    info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = (stat.S_IFREG | 0o755) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(info, Path("/bin/true").read_bytes())


def run(command: list[str], env: dict, cwd: Path, log_file: Path, allowed=(0,)) -> int:
    with open(log_file, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(command)}\n")
        out.flush()
        result = subprocess.run(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    if result.returncode not in allowed:
        raise StepFailed(f"`{' '.join(command)}` exited {result.returncode} (log: {log_file})")
    return result.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deployer", type=Path, default=None,
                        help="the deployer binary (default: $DEPLOYER, else $CARGO_TARGET_DIR/debug/deployer, "
                             "else target/debug/deployer)")
    parser.add_argument("--config", type=Path, default=ROOT / "deployer.toml")
    parser.add_argument("--env", default="dev")
    parser.add_argument("--github-repository", default="octo-org/playground",
                        help="passed to bootstrap as --var github_repository=... (deployer.toml may leave it unset)")
    parser.add_argument("--before-boundary", action="store_true",
                        help="first put the saved pre-boundary deploy policy back (fixtures/restore_before_boundary.py)")
    change = parser.add_mutually_exclusive_group()
    change.add_argument("--simulate-attack", action="store_true", help="rewrite the table policy to Allow *:* first")
    change.add_argument("--model-fix", action="store_true", help="apply fixtures/model_boundary_fix.py first")
    parser.add_argument("--queries", type=Path, default=HERE / "fixtures/queries.json")
    parser.add_argument("--no-what-if", action="store_true", help="pass --no-what-if to iam_verdict.py")
    parser.add_argument("--no-lint", action="store_true")
    parser.add_argument("--report-dir", type=Path, help="keep the reports and logs here (default: a temporary directory)")
    parser.add_argument("--save-deploy-policy", type=Path, help="write the deploy policy read back from IAM after bootstrap")
    args = parser.parse_args()
    if args.deployer is None:
        args.deployer = default_deployer()
        if args.deployer is None:
            tried = ", ".join(str(path) for path in deployer_candidates())
            log(f"no deployer binary found (tried {tried}): build it with `cargo build -p deployer`, "
                "or pass --deployer PATH or set $DEPLOYER")
            return 2
    if not args.deployer.is_file():
        log(f"no deployer binary at {args.deployer} (--deployer or $DEPLOYER)")
        return 2
    work = Path(tempfile.mkdtemp(prefix="iam-check-"))
    reports = args.report_dir or work / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    log_file = reports / "deploy.log"
    log_file.write_text("", encoding="utf-8")
    moto = None
    try:
        moto, endpoint = start_moto()
        log(f"moto at {endpoint}; deploying with {args.deployer} in {work}")
        if args.config.exists():
            shutil.copy(args.config, work / "deployer.toml")
        make_artifact(work / "fn.zip")
        env = {**os.environ, "AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
               "DEPLOYER_SKIP_HEALTH_CHECK": "true", "DEPLOYER_SKIP_PRE_TRAFFIC_CHECK": "true"}
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"):
            env.pop(name, None)
        started = time.monotonic()
        run([str(args.deployer), "bootstrap", "--auto-approve", "--var", f"github_repository={args.github_repository}"],
            env, work, log_file)
        if args.save_deploy_policy:
            import boto3

            iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            arn = next(p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]
                       if p["PolicyName"] == "aimodelshare-github-actions-deployment")
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
            args.save_deploy_policy.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
            log(f"deploy policy saved to {args.save_deploy_policy}")
        run([str(args.deployer), "apply", "--env", args.env, "--auto-approve", "--artifact", "fn.zip"], env, work, log_file)
        log(f"deployed in {time.monotonic() - started:.1f}s")
        python = sys.executable
        if args.before_boundary:
            run([python, str(HERE / "fixtures/restore_before_boundary.py"), "--endpoint", endpoint, "--env", args.env],
                env, work, log_file)
            log("restored the pre-boundary deploy policy (fixtures/deploy-policy-before-boundary.json)")
        if args.simulate_attack:
            run([python, str(HERE / "fixtures/simulate_policy_rewrite.py"), "--endpoint", endpoint, "--env", args.env],
                env, work, log_file)
            log("simulated escalation (1): the table policy now allows *:*")
        if args.model_fix:
            run([python, str(HERE / "fixtures/model_boundary_fix.py"), "--endpoint", endpoint, "--env", args.env],
                env, work, log_file)
            log("modelled the boundary fix (fixtures/model_boundary_fix.py)")
        # PMapper's verdict on each role GitHub Actions assumes: the deploy role
        # (with the what-if model of the IAM changes it may make), the
        # read-only plan role, which a job without approval assumes, and the
        # preview role of pull requests (pr-* only; what-if as for the deploy role).
        verdict = 0
        for principal, report in (("role/aimodelshare-github-oidc-deployer", "verdict.json"),
                                  ("role/aimodelshare-github-oidc-planner", "verdict-plan-role.json"),
                                  ("role/aimodelshare-github-oidc-preview", "verdict-preview-role.json")):
            verdict_command = [python, str(HERE / "iam_verdict.py"), "--endpoint", endpoint, "--queries",
                               str(args.queries), "--principal", principal, "--output", str(reports / report)]
            verdict_command += ["--no-what-if"] if args.no_what_if else []
            verdict = max(verdict, subprocess.run(verdict_command, env=env).returncode)
        lint = 0
        if not args.no_lint:
            lint = subprocess.run([python, str(HERE / "lint_policies.py"), "--endpoint", endpoint,
                                   "--output", str(reports / "lint.json")], env=env).returncode
    except StepFailed as error:
        log(str(error))
        return 2
    finally:
        if moto is not None:
            stop_moto(moto)
        shutil.rmtree(work, ignore_errors=True)
    kept = f"reports in {reports}" if args.report_dir else "pass --report-dir DIR to keep the JSON reports"
    log(f"iam_verdict exit {verdict}, lint_policies exit {lint}; {kept}")
    if 2 in (verdict, lint):
        return 2
    return 1 if 1 in (verdict, lint) else 0


if __name__ == "__main__":
    sys.exit(main())
