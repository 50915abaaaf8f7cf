#!/usr/bin/env python3
"""Drive a playground API through its real client, the `aimodelshare` package.

    .venv-client/bin/python loadtest/real_client/drive.py BASE_URL [options]

What the teaching apps do, in their order, through the library they use:
a session is stored (POST /sessions, as the sign-in page does) and fetched
back with `aimodelshare.aws.get_token_from_session`, as an app opened with
`?sessionid=` does; the token it returns signs a `MoralcompassApiClient`, which
creates tables, writes users and pages through them with its own iterators
(`iter_tables`, `iter_users`, which send each page's `lastKey` back as
`json.dumps(lastKey)`), then reads and writes (get_user, put_user, get_table,
patch_table). With --class-size, a moral-compass class as the teaching apps
drive it (update_moral_compass, get_user, the task calls, list_users(limit=500)
and their own rank computation), whose ranks must equal the server's.

It asserts that every user is seen exactly once across the pages, that no
session shows as a table or as a user, and that a session is a 404 once its
token has expired. Any failure exits 1 with `FAIL: <check>: <detail>` on
standard error; success prints one line starting with `OK:`.

Without --token the session holds a JWT-shaped token made here (unsigned, for
an API without sign-in) whose `exp` is --session-seconds ahead; with --token
(a token API Gateway verifies, where sign-in is on) the session and every
write carry that token, and expiry is not waited for (such a token lives an
hour).

Install the client with scripts/setup-client (.venv-client/).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import importlib.metadata
import importlib.util
import json
import math
import os
import re
import sys
import time
import types
import uuid


def import_client():
    """The client modules, imported without `aimodelshare/__init__.py`.

    The package's `__init__` tries to import its ML half (playground,
    preprocessors: numpy, pandas, onnx...) and `moral_compass/__init__` its
    Gradio apps; each failure is swallowed with a warning, but the venv
    installs aimodelshare with --no-deps, so those imports can only fail or,
    worse, half-succeed on whatever else is on the path. The REST client and
    the session helper need neither: register the two packages as bare
    namespaces over their installed folders, so `import
    aimodelshare.moral_compass.api_client` and `import aimodelshare.aws` run
    only those modules (and what they import: config, exceptions, modeluser).
    """
    for name in ("aimodelshare", "aimodelshare.moral_compass"):
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(
                f"FAIL: setup: the {name} package is not installed in {sys.prefix}; "
                "run scripts/setup-client (creates .venv-client/ from "
                "loadtest/real_client/requirements.txt)"
            )
        package = types.ModuleType(name)
        package.__path__ = list(spec.submodule_search_locations)
        package.__spec__ = spec
        package.__file__ = spec.origin
        package.__package__ = name
        sys.modules[name] = package
    import aimodelshare.aws as aws  # noqa: PLC0415
    import aimodelshare.moral_compass.api_client as api_client  # noqa: PLC0415

    return api_client, aws


api_client, aws = import_client()
MoralcompassApiClient = api_client.MoralcompassApiClient
ApiClientError = api_client.ApiClientError
NotFoundError = api_client.NotFoundError
AuthorizationError = aws.AuthorizationError


class Failure(Exception):
    """A check that did not hold."""


_step = ["setup"]


@contextlib.contextmanager
def step(name: str):
    """Name what runs, so an unexpected exception says where it came from."""
    previous = _step[0]
    _step[0] = name
    try:
        yield
    except Failure:
        raise
    except Exception as error:  # noqa: BLE001 - any client error fails the run, named
        raise Failure(f"{name}: {type(error).__name__}: {error}") from error
    finally:
        _step[0] = previous


def check(condition: bool, what: str, detail: str = "") -> None:
    if not condition:
        raise Failure(f"{what}: {detail}" if detail else what)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_shaped(username: str, expires_at: int) -> str:
    """A token shaped as the sign-in page's ID token: JSON header and payload,
    a signature segment (random: an API without sign-in verifies none)."""
    header = {"alg": "RS256", "typ": "JWT", "kid": "real-client-driver"}
    claims = {
        "sub": str(uuid.uuid4()),
        "cognito:username": username,
        "email": f"{username}@example.org",
        "token_use": "id",
        "iat": int(time.time()),
        "exp": expires_at,
    }
    return ".".join(
        [
            b64url(json.dumps(header).encode()),
            b64url(json.dumps(claims).encode()),
            b64url(os.urandom(32)),
        ]
    )


def claims_of(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def status_of(error: Exception) -> int | None:
    """The HTTP status an ApiClientError carries (the client keeps only the
    message for 4xx other than 404: `... 400 Client Error ...`)."""
    if isinstance(error, NotFoundError):
        return 404
    response = getattr(getattr(error, "__context__", None), "response", None)
    if response is not None:
        return response.status_code
    found = re.search(r"\b([45]\d\d)\b", str(error))
    return int(found.group(1)) if found else None


def expect_status(expected: int, what: str, call) -> None:
    try:
        answer = call()
    except ApiClientError as error:
        check(status_of(error) == expected, what, f"expected {expected}, got {error}")
        return
    raise Failure(f"{what}: expected {expected}, got a success: {answer}")


def fetch_session(base_url: str, session_id: str) -> str:
    """What an app opened with `?sessionid=` does. get_token_from_session reads
    the whole URL from AIMODELSHARE_SESSION_API_URL (its default is the legacy
    deployment's), so point it at this API's session."""
    os.environ["AIMODELSHARE_SESSION_API_URL"] = f"{base_url}/sessions/{session_id}"
    return aws.get_token_from_session(session_id)


def counting_pages(client, method: str, bound: int) -> list[int]:
    """Wrap the client's `list_users`/`list_tables` (which its iterators call
    once a page) to count the pages an iteration took, and to stop a listing
    that would never end (the iterators loop while a page has a `lastKey`)."""
    pages = [0]
    cursors = set()
    original = getattr(client, method)

    def wrapped(*args, **kwargs):
        pages[0] += 1
        cursor = json.dumps(kwargs.get("last_key"), sort_keys=True)
        check(cursor not in cursors, f"{method} never repeats a cursor", cursor)
        cursors.add(cursor)
        check(pages[0] <= bound, f"{method} ends", f"still paging after {bound} pages")
        return original(*args, **kwargs)

    setattr(client, method, wrapped)
    return pages


def drive(options: argparse.Namespace) -> str:
    base_url = options.base_url.rstrip("/")
    run = uuid.uuid4().hex[:8]
    # The client signs itself in from these when it gets no token: not here.
    for variable in ("JWT_AUTHORIZATION_TOKEN", "AWS_TOKEN", "AIMODELSHARE_USERNAME",
                     "AIMODELSHARE_PASSWORD", "username", "password"):
        os.environ.pop(variable, None)

    with step("GET /health"):
        anonymous = MoralcompassApiClient(api_base_url=base_url, timeout=options.timeout)
        health = anonymous.health()
        check(health.get("status") == "ok", "GET /health is ok", str(health))

    # 1. Sign-in: the sign-in page stores the session, the app fetches it back.
    session_id = f"sess-{run}"
    started = time.time()
    if options.token:
        token = options.token
        expires_at = int(claims_of(token)["exp"])
    else:
        expires_at = int(started) + options.session_seconds
        token = jwt_shaped(f"student-{run}", expires_at)
    student = claims_of(token).get("cognito:username")
    with step("POST /sessions"):
        # The library has no call for this (the sign-in page makes it): the
        # client's own transport sends it, with the token as its Bearer.
        page = MoralcompassApiClient(api_base_url=base_url, auth_token=token,
                                     timeout=options.timeout)
        stored = page._request("POST", "/sessions",
                               json={"sessionId": session_id, "token": token})
        check(stored.status_code == 201, "POST /sessions is a 201",
              f"{stored.status_code} {stored.text}")
        body = stored.json()
        check(body.get("sessionId") == session_id and "message" in body,
              "POST /sessions answers the session's id and a message", str(body))
        stored_until = body.get("expiresAt")
        check(isinstance(stored_until, int), "expiresAt is epoch seconds", str(body))
        check(int(started) - 1 <= stored_until <= expires_at,
              "the session expires by its token's exp",
              f"expiresAt {stored_until}, exp {expires_at}, now {int(started)}")
    if not options.token:
        with step("session rules"):
            expect_status(400, "a token that is not a JWT is a 400", lambda: page._request(
                "POST", "/sessions", json={"sessionId": f"bad-{run}", "token": "not-a-jwt"}))
            expired = jwt_shaped(f"student-{run}", int(time.time()) - 60)
            expect_status(400, "an expired token is a 400", lambda: page._request(
                "POST", "/sessions", json={"sessionId": f"old-{run}", "token": expired}))
            expect_status(404, "PATCH of an unknown session is a 404", lambda: page._request(
                "PATCH", f"/sessions/none-{run}", json={"token": token}))
            expect_status(404, "GET of an unknown session is a 404",
                          lambda: page._request("GET", f"/sessions/none-{run}"))
    with step("get_token_from_session"):
        fetched = fetch_session(base_url, session_id)
        check(fetched == token, "get_token_from_session returns the stored token",
              f"{fetched[:24]}... is not {token[:24]}...")
        check(aws._get_username_from_token(fetched) == student,
              "the app reads the student's name from the fetched token",
              str(aws._get_username_from_token(fetched)))
    if not options.token:
        with step("PATCH /sessions"):
            refreshed = jwt_shaped(student, expires_at)
            answer = page._request("PATCH", f"/sessions/{session_id}", json={"token": refreshed})
            check(answer.status_code == 200, "PATCH /sessions is a 200",
                  f"{answer.status_code} {answer.text}")
            check(fetch_session(base_url, session_id) == refreshed,
                  "the session holds the token it was patched with")
            token = refreshed
    else:
        with step("PATCH /sessions"):
            answer = page._request("PATCH", f"/sessions/{session_id}", json={"token": token})
            check(answer.status_code == 200, "PATCH /sessions by its owner is a 200",
                  f"{answer.status_code} {answer.text}")

    # 2. The app's client, signed with the session's token.
    client = MoralcompassApiClient(api_base_url=base_url, auth_token=token,
                                   timeout=options.timeout)
    table_id = f"drv-{run}"
    extra_tables = [f"drv-{run}-b", f"drv-{run}-c"]
    with step("create_table"):
        created = client.create_table(table_id, display_name=f"Driver {run}",
                                      playground_url=f"https://example.org/playground/{table_id}")
        check(created.get("tableId") == table_id, "create_table answers the table", str(created))
        for other in extra_tables:
            client.create_table(other)
        # A table named as the session is its own partition: no 409, no user.
        client.create_table(session_id)

    usernames = [f"u{index:03d}" for index in range(options.users)]
    with step("put_user"):
        for index, name in enumerate(usernames):
            answer = client.put_user(table_id, name, submission_count=index % 7,
                                     total_count=10, team_name=f"team-{index % 3}")
            check(answer.get("username", name) == name, "put_user answers the user", str(answer))

    with step("iter_users"):
        seen, pages = iterate_until_complete(
            client, "list_users", lambda: [user.username for user in
                                           client.iter_users(table_id, limit=options.page_size)],
            options.users, bound=options.users + 10)
        check_listed_once("user", seen, usernames, session_id)
        wanted_pages = math.ceil(options.users / options.page_size)
        check(pages >= wanted_pages, "iter_users paged",
              f"{pages} pages for {options.users} users at limit {options.page_size}")
        session_table_users = list(client.iter_users(session_id, limit=options.page_size))
        check(session_table_users == [], "a session never appears among a table's users",
              f"table {session_id} lists {session_table_users}")

    with step("iter_tables"):
        ours = [table_id, *extra_tables, session_id]
        listed, table_pages = iterate_until_complete(
            client, "list_tables", lambda: [table.table_id for table in
                                            client.iter_tables(limit=options.table_page_size)],
            len(ours), wanted=ours)
        duplicates = sorted({table for table in listed if listed.count(table) > 1})
        check(not duplicates, "every table is listed exactly once", f"repeated: {duplicates}")
        for table in ours:
            check(table in listed, "iter_tables lists every table", f"{table} missing")
        sessions = [table for table in listed if table.startswith("session#")]
        check(not sessions, "a session never appears among the tables", str(sessions))
        check(table_pages >= 2, "iter_tables paged",
              f"{table_pages} pages at limit {options.table_page_size}")

    with step("reads and writes"):
        first = client.get_user(table_id, usernames[1])
        check((first.username, first.submission_count, first.total_count)
              == (usernames[1], 1, 10), "get_user reads what put_user wrote", str(first))
        client.put_user(table_id, usernames[1], submission_count=9, total_count=12)
        again = client.get_user(table_id, usernames[1])
        check((again.submission_count, again.total_count) == (9, 12),
              "put_user updates an existing user", str(again))
        table = client.get_table(table_id)
        check(table.user_count == options.users, "get_table counts every user once",
              f"userCount {table.user_count}, wrote {options.users}")
        client.patch_table(table_id, display_name=f"Renamed {run}")
        check(client.get_table(table_id).display_name == f"Renamed {run}",
              "patch_table renames the table")
        client.patch_table(table_id, is_archived=True)
        check(client.get_table(table_id).is_archived, "patch_table archives the table")
        expect_status(404, "get_user of a user never written is a 404",
                      lambda: client.get_user(table_id, f"nobody-{run}"))
        expect_status(404, "get_table of a table never made is a 404",
                      lambda: client.get_table(f"none-{run}"))
        session_table = client.get_table(session_id)
        check(session_table.user_count == 0, "a table named as a session has no user",
              str(session_table))
        if time.time() < stored_until - 1:
            check(fetch_session(base_url, session_id) == token,
                  "the session still answers before it expires")

    classroom = ""
    if options.class_size:
        classroom = "; " + moral_compass_class(base_url, run, options)

    if options.token:
        expiry = "expiry not waited for (a signed-in token lives an hour)"
    else:
        with step("expired session"):
            deadline = max(stored_until, expires_at) + 1
            time.sleep(max(0.0, deadline - time.time()))
            try:
                fetch_session(base_url, session_id)
            except AuthorizationError as error:
                check("404" in str(error), "an expired session is a 404", str(error))
            else:
                raise Failure("an expired session is a 404: get_token_from_session "
                              f"still returned a token {time.time() - deadline + 1:.1f} s "
                              "after it expired")
            expect_status(404, "GET /sessions of an expired session is a 404",
                          lambda: client._request("GET", f"/sessions/{session_id}"))
            fresh = jwt_shaped(student, int(time.time()) + 600)
            expect_status(404, "PATCH of an expired session is a 404", lambda: page._request(
                "PATCH", f"/sessions/{session_id}", json={"token": fresh}))
        expiry = f"expired session 404 {time.time() - started:.1f} s after it was stored"

    version = importlib.metadata.version("aimodelshare")
    return (f"OK: aimodelshare {version} against {base_url}: session stored, fetched by "
            f"get_token_from_session and patched; {options.users} users seen once over "
            f"{pages} pages (limit {options.page_size}); {len(listed)} tables over "
            f"{table_pages} pages (limit {options.table_page_size}), no session among "
            f"tables or users; reads and writes checked{classroom}; {expiry}")


def apps_ranks(users, username, team_name):
    """What the teaching apps compute from a list of users (their
    `get_leaderboard_data`, bias_detective_en.py): the user's place after a
    stable sort by score descending, and its team's place by average score;
    0 where not found."""
    users_sorted = sorted(users, key=lambda x: float(x.get("moralCompassScore", 0) or 0),
                          reverse=True)
    mine = next((u for u in users_sorted if u.get("username") == username), None)
    rank = users_sorted.index(mine) + 1 if mine else 0
    team_map = {}
    for user in users:
        team = user.get("teamName")
        if team:
            entry = team_map.setdefault(team, {"sum": 0, "count": 0})
            entry["sum"] += float(user.get("moralCompassScore", 0) or 0)
            entry["count"] += 1
    teams_sorted = sorted(({"team": t, "avg": d["sum"] / d["count"]} for t, d in team_map.items()),
                          key=lambda x: x["avg"], reverse=True)
    mine = next((t for t in teams_sorted if t["team"] == team_name), None)
    return rank, (teams_sorted.index(mine) + 1 if mine else 0)


def moral_compass_class(base_url: str, run: str, options: argparse.Namespace) -> str:
    """A class of --class-size students in teams, through the apps' calls:
    update_moral_compass, get_user, list_users(limit=500) and the apps' own
    rank computation, compared with the ranks the server computes
    (`?withRank=true`, GET /tables/{id}/teams). Past 500 students the apps'
    one-page computation is wrong; over every page it matches the server."""
    client = (MoralcompassApiClient(api_base_url=base_url, auth_token=options.token,
                                    timeout=options.timeout)
              if options.token else
              MoralcompassApiClient(api_base_url=base_url, timeout=options.timeout))
    table_id = f"mc-{run}"
    size = options.class_size
    with step("moral compass: create the class"):
        client.create_table(table_id, display_name=f"Moral compass {run}")
    students = [f"pupil{index:04d}" for index in range(size)]
    team_of = {name: f"team{index % 7}" for index, name in enumerate(students)}
    with step("moral compass: update_moral_compass"):
        for index, name in enumerate(students):
            answer = client.update_moral_compass(
                table_id, name, metrics={"accuracy": round(0.5 + (index * 37 % 50) / 100, 2)},
                tasks_completed=index % 4, total_tasks=3, questions_correct=index % 3,
                total_questions=2, team_name=team_of[name],
                completed_task_ids=[f"t{task}" for task in range(1, index % 4 + 1)])
            check("moralCompassScore" in answer and answer.get("username", name) == name,
                  "update_moral_compass answers the score", str(answer))
    with step("moral compass: get_user"):
        fetched = client.get_user(table_id, students[3])
        check(fetched.completed_task_ids == ["t1", "t2", "t3"],
              "get_user returns completedTaskIds", str(fetched.completed_task_ids))
        raw = client._request("GET", f"/tables/{table_id}/users/{students[3]}").json()
        check(raw.get("teamName") == team_of[students[3]], "get_user returns teamName", str(raw))
    with step("moral compass: the client's task calls"):
        name = students[1]
        added = client.add_tasks(table_id, name, ["t10", "t2"])
        check(added.get("completedTaskIds") == ["t1", "t2", "t10"],
              "add_tasks keeps a sorted, duplicate-free list", str(added))
        removed = client.remove_tasks(table_id, name, ["t1"])
        check(removed.get("completedTaskIds") == ["t2", "t10"], "remove_tasks", str(removed))
        reset = client.reset_tasks(table_id, name, ["t3"])
        check(reset.get("completedTaskIds") == ["t3"], "reset_tasks", str(reset))
        cleared = client.clear_tasks(table_id, name)
        check(cleared.get("completedTaskIds") == [], "clear_tasks", str(cleared))
        expect_status(404, "a task change of a user who does not exist is a 404",
                      lambda: client.add_tasks(table_id, f"nobody-{run}", ["t1"]))
    with step("moral compass: list_users(limit=500), as the apps call it"):
        one_page = client.list_users(table_id, limit=500)["users"]
    with step("moral compass: every page"):
        everyone, last_key = [], None
        while True:
            page = client.list_users(table_id, limit=500, last_key=last_key)
            everyone.extend(page["users"])
            last_key = page.get("lastKey")
            if not last_key:
                break
        check(sorted(u["username"] for u in everyone) == sorted(students),
              "every student is listed once across pages", f"{len(everyone)} listed")
    with step("moral compass: the server's ranks"):
        served_teams = client._request("GET", f"/tables/{table_id}/teams?limit=500").json()["teams"]
        team_rank = {team["teamName"]: team["rank"] for team in served_teams}
        # Every 4th student, and each one the apps' one-page read ranks wrong.
        one_page_wrong = {name for name in students
                          if apps_ranks(one_page, name, team_of[name])[0]
                          != apps_ranks(everyone, name, team_of[name])[0]}
        for name in [name for index, name in enumerate(students)
                     if index % 4 == 0 or name in one_page_wrong]:
            server = client._request(
                "GET", f"/tables/{table_id}/users/{name}?withRank=true").json()
            full_rank, full_team_rank = apps_ranks(everyone, name, team_of[name])
            check((server.get("rank"), server.get("teamRank")) == (full_rank, full_team_rank),
                  "the server's rank and teamRank are the apps' own, computed over the "
                  "whole class", f"{name}: server {server.get('rank')}/{server.get('teamRank')}, "
                  f"apps over every page {full_rank}/{full_team_rank}")
            check(team_rank.get(team_of[name]) == full_team_rank,
                  "GET /teams ranks each team as the apps do over the whole class",
                  f"{team_of[name]}: {team_rank.get(team_of[name])} vs {full_team_rank}")
        wrong_on_one_page = len(one_page_wrong)
        if size > 500:
            check(wrong_on_one_page > 0,
                  "past 500 students the apps' one-page ranks are wrong (what the server fixes)",
                  "every one-page rank was right")
    return (f"a class of {size} in {len(served_teams)} teams: the server's rank, teamRank "
            f"and teams equal the apps' computation over every page "
            f"(over one page of 500, {wrong_on_one_page} students' ranks were wrong)")


def iterate_until_complete(client, method, iterate, expected, wanted=None, bound=1000):
    """Iterate (the lists come from indexes that may lag a write for a moment)
    until every expected item shows, for at most 10 s; the last listing and
    its page count. Duplicates are left for the caller to see."""
    deadline = time.time() + 10
    while True:
        pages = counting_pages(client, method, bound)
        listed = iterate()
        complete = (all(item in listed for item in wanted) if wanted is not None
                    else len(set(listed)) >= expected)
        vars(client).pop(method, None)  # the client's own method again
        if complete or time.time() > deadline:
            return listed, pages[0]
        time.sleep(0.5)


def check_listed_once(kind, listed, expected, session_id):
    duplicates = sorted({item for item in listed if listed.count(item) > 1})
    check(not duplicates, f"every {kind} is seen exactly once across pages",
          f"seen more than once: {duplicates}")
    sessions = [item for item in listed if item == session_id or item == "_session"
                or item.startswith("session#")]
    check(not sessions, f"a session never appears among a table's {kind}s",
          f"listed: {sessions}")
    missing = sorted(set(expected) - set(listed))
    extra = sorted(set(listed) - set(expected))
    check(not missing and not extra, f"every {kind} is seen exactly once across pages",
          f"missing {missing}, unexpected {extra}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the API's base URL (with its stage, if any)")
    parser.add_argument("--users", type=int, default=23, help="users to write (default 23)")
    parser.add_argument("--page-size", type=int, default=5,
                        help="iter_users page size (default 5)")
    parser.add_argument("--table-page-size", type=int, default=2,
                        help="iter_tables page size (default 2)")
    parser.add_argument("--session-seconds", type=int, default=8,
                        help="the made-up token's lifetime, waited for at the end (default 8)")
    parser.add_argument("--token", help="a token API Gateway verifies (sign-in on)")
    parser.add_argument("--timeout", type=int, default=30, help="seconds per request")
    parser.add_argument("--class-size", type=int, default=0,
                        help="students of a moral-compass class, whose ranks the apps' own "
                             "computation checks against the server's (default 0: none)")
    options = parser.parse_args()
    try:
        print(drive(options))
        return 0
    except Failure as failure:
        print(f"FAIL: {failure}", file=sys.stderr)
    except Exception as error:  # noqa: BLE001 - any client error fails the run, named
        print(f"FAIL: {_step[0]}: {type(error).__name__}: {error}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
