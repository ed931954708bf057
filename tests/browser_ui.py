"""Drive the Airflow 3.3.1 UI in headless Chromium, as a user following the README would.

Log in through SimpleAuthManager's page, check that the Dag list shows no "Dag Import Error"
and that /api/v2/importErrors agrees, open video_recommender, trigger it through the
params form, wait in the UI until the run succeeds, and check the run's conf on its
Details tab and through the REST API. Each step leaves a screenshot.

Selectors are roles, accessible names and data-testids of Airflow's UI, never generated
class names. Playwright drives Debian's chromium (executable_path); it never downloads a
browser.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect, sync_playwright

from video_recommender.layout import run_key

DAG_ID = "video_recommender"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMPORT_ERROR_BUTTON = re.compile(r"Dag Import Errors?")  # dashboard stats card and Dag-list icon button


class UICheckError(AssertionError):
    pass


def monaco_text(page: Page, scope) -> str:
    """The text a Monaco editor shows (its .view-lines), with Monaco's non-breaking spaces undone."""
    return scope.locator(".monaco-editor .view-lines").first.inner_text().replace("\xa0", " ")


def rest_token(ctx: BrowserContext, url: str, password: str) -> str:
    response = ctx.request.post(f"{url}/auth/token", data={"username": "admin", "password": password})
    if not response.ok:
        raise UICheckError(f"POST /auth/token: {response.status} {response.text()[:200]}")
    return response.json()["access_token"]


def rest_get(ctx: BrowserContext, url: str, token: str, path: str) -> dict:
    response = ctx.request.get(f"{url}/api/v2/{path}", headers={"Authorization": f"Bearer {token}"})
    if not response.ok:
        raise UICheckError(f"GET /api/v2/{path}: {response.status} {response.text()[:200]}")
    return response.json()


@contextmanager
def browser(chromium: str = CHROMIUM) -> Generator[tuple[BrowserContext, Page], None, None]:
    """Debian's headless chromium with a throw-away profile: its context and first page."""
    with sync_playwright() as p, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        ctx = p.chromium.launch_persistent_context(
            profile,
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            ctx.set_default_timeout(30_000)
            yield ctx, ctx.pages[0] if ctx.pages else ctx.new_page()
        finally:
            ctx.close()


def log_in(page: Page, url: str, password: str, shot: Callable[[Page, str], None] = lambda page, name: None) -> None:
    """SimpleAuthManager's login page: / redirects to /auth/login?next=/; ends on the home page."""
    page.goto(url)
    page.wait_for_url(re.compile(r"/auth/login"))
    username = page.get_by_label("Username")  # <input name="username">
    password_box = page.get_by_label("Password")  # <input name="password" type="password">
    sign_in = page.get_by_role("button", name="Sign in")  # disabled until both fields are filled
    expect(sign_in).to_be_disabled()
    shot(page, "01-login")
    username.fill("admin")
    password_box.fill(password)
    expect(sign_in).to_be_enabled()
    sign_in.click()
    page.wait_for_url(lambda u: "/auth/login" not in u)
    expect(page.get_by_test_id("nav-dags-link")).to_be_visible()
    expect(page.get_by_role("heading", name="Welcome")).to_be_visible()


def task_links(
    url: str, password: str, run_id: str, task_id: str, names: list[str], shot_path: Path, chromium: str = CHROMIUM
) -> dict:
    """The extra links named ``names`` as a task instance's page shows them, ``{name: href}``, and a screenshot.

    Airflow 3.3.1's UI shows them on the task instance's Details tab, under "Extra Links":
    one link button per link of GET .../taskInstances/{task}/links whose URL is not empty
    and is http(s), mailto or the UI's own origin (read from the UI's bundle,
    airflow/ui/dist/assets/index-*.js).
    """
    shot_path.parent.mkdir(parents=True, exist_ok=True)
    with browser(chromium) as (_ctx, page):
        asked: list[str] = []
        page.on("response", lambda r: asked.append(f"{r.status} {r.url}") if "/links" in r.url else None)
        log_in(page, url, password)
        page.goto(f"{url}/dags/{DAG_ID}/runs/{run_id}/tasks/{task_id}/details")
        expect(page.get_by_text("Extra Links", exact=True)).to_be_visible()
        found = {}
        try:
            for name in names:
                link = page.get_by_role("link", name=name, exact=True)
                expect(link).to_be_visible()
                found[name] = link.get_attribute("href")
        except AssertionError as error:
            raise UICheckError(f"extra links not shown: {found}; the page's link requests: {asked}") from error
        finally:
            page.screenshot(path=str(shot_path))
        return found


# The DAG's graph: its tasks, and its edges (the ten steps' order plus start's to its teardown).
GRAPH_TASKS = ("start", "preprocess", "prepare", "choose_training", "train", "tune", "transform", "recommend",
               "evaluate", "delete_model")  # fmt: skip
GRAPH_EDGES = 11


def drive(url: str, password: str, shots: Path, conf: dict, run_timeout: float, chromium: str = CHROMIUM) -> dict:
    """The README's flow in the UI; returns what it saw, raises UICheckError (an AssertionError) otherwise."""
    shots.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(shots / f"{name}.png"))

    t0 = time.monotonic()
    with browser(chromium) as (ctx, page):
        timings["browser_start_s"] = time.monotonic() - t0
        # 1. Login.
        t0 = time.monotonic()
        log_in(page, url, password, shot)
        timings["login_s"] = time.monotonic() - t0
        shot(page, "02-home")

        # 2. Dag list and import errors. The indicator is rendered only when
        # GET /api/v2/importErrors?limit=1 reports total_entries > 0 (a skeleton while it
        # loads), so absence means something only after that response has arrived:
        # load /dags fresh (a client-side link click may reuse the cached answer).
        # Right after start-up the dag-processor may not have parsed the Dag yet: reload.
        t0 = time.monotonic()
        dag_link = page.get_by_role("link", name=DAG_ID, exact=True)  # data-testid="dag-id" too
        while True:
            with page.expect_response(lambda r: "/api/v2/importErrors" in r.url) as import_errors:
                page.goto(f"{url}/dags")
            ui_import_errors = import_errors.value.json()
            try:
                expect(dag_link).to_be_visible(timeout=5_000)
                break
            except AssertionError:
                if time.monotonic() - t0 > 120:
                    shot(page, "03-dag-list-no-dag")
                    raise UICheckError(f"{DAG_ID} not in the Dag list after 120 s") from None
        expect(page.get_by_role("heading", name=re.compile(r"^\d+ Dags?$"))).to_be_visible()
        indicator = page.get_by_role("button", name=IMPORT_ERROR_BUTTON)
        if ui_import_errors["total_entries"] or indicator.count():
            shot(page, "03-dag-list-import-errors")
            raise UICheckError(f"the UI shows Dag import errors: {ui_import_errors}")
        token = rest_token(ctx, url, password)
        api_errors = rest_get(ctx, url, token, "importErrors")
        if api_errors["total_entries"]:
            raise UICheckError(f"/api/v2/importErrors: {api_errors}")
        timings["dag_list_s"] = time.monotonic() - t0
        shot(page, "03-dag-list")

        # 3. The Dag's page.
        dag_link.click()
        page.wait_for_url(re.compile(rf"/dags/{DAG_ID}/?$"))
        trigger_button = page.get_by_test_id("trigger-dag-button")  # accessible name "Trigger Dag"
        expect(trigger_button).to_be_visible()
        expect(page.get_by_test_id("header-card")).to_be_visible()
        shot(page, "04-dag")

        # 4. Trigger modal: "Single Run", Logical Date, "Unpause <dag> on trigger" (only while
        # paused; checked by default), "Run Parameters" (one field per param, by param
        # name), "Advanced Options" (Run ID, note, Configuration JSON in Monaco).
        t0 = time.monotonic()
        trigger_button.click()
        dialog = page.get_by_role("dialog")  # has no accessible name; its heading names the Dag
        expect(dialog.get_by_role("heading", name=f"Trigger Dag - {DAG_ID}")).to_be_visible()
        submit = dialog.get_by_test_id("trigger-dag-submit")  # role button "Trigger" in the footer
        unpause = dialog.get_by_role("checkbox", name=re.compile(r"^Unpause .* on trigger$"))
        if unpause.count():
            expect(unpause).to_be_checked()
        fields = {}
        for name, value in conf.items():
            field = dialog.get_by_role("spinbutton", name=name)  # number/integer params
            field.fill(str(value))
            field.blur()
            expect(field).to_have_value(str(value))
            fields[name] = field
        if not submit.is_enabled():
            shot(page, "05-trigger-form-invalid")
            raise UICheckError(
                "the Trigger button is disabled: a required param is empty (a Param whose type"
                " lacks 'null' and whose value is '' or None counts as missing in the form)"
            )
        shot(page, "05-trigger-form")
        # The form writes the conf JSON shown under Advanced Options (an accordion: opening
        # it closes Run Parameters). Read it back rather than trust the fields.
        dialog.get_by_role("button", name="Advanced Options").click()
        expect(dialog.get_by_role("button", name="Run Parameters")).to_have_attribute("aria-expanded", "false")
        expect(fields[next(iter(fields))]).to_be_hidden()  # the accordion's animation is over
        editor = dialog.get_by_role("group").filter(has_text="Configuration JSON")
        expect(editor.locator(".monaco-editor")).to_be_visible()
        form_conf = json.loads(monaco_text(page, editor))
        for name, value in conf.items():
            if form_conf.get(name) != value:
                raise UICheckError(f"the form's conf has {name}={form_conf.get(name)!r}, not {value!r}")
        shot(page, "06-trigger-advanced-conf")
        with page.expect_response(
            lambda r: r.url.endswith(f"/api/v2/dags/{DAG_ID}/dagRuns") and r.request.method == "POST"
        ) as posted:
            submit.click()
        if not posted.value.ok:
            raise UICheckError(f"trigger: {posted.value.status} {posted.value.text()[:300]}")
        run_id = posted.value.json()["dag_run_id"]
        # The UI navigates to the new run's page.
        page.wait_for_url(lambda u: "/runs/" in u)
        run_state = page.get_by_test_id("header-card").get_by_test_id("state-badge")
        expect(run_state).to_be_visible()
        timings["trigger_s"] = time.monotonic() - t0
        shot(page, "07-run-started")

        # 5. Wait in the UI. The page refreshes itself while the run is active; reload now
        # and then so a stalled auto-refresh cannot hang the check.
        t0 = time.monotonic()
        last_reload = t0
        seen = []
        while True:
            state = run_state.inner_text().strip().lower()
            if not seen or seen[-1] != state:
                seen.append(state)
            if state == "success":
                break
            if state == "failed" or time.monotonic() - t0 > run_timeout:
                shot(page, "08-run-not-successful")
                raise UICheckError(f"run {run_id}: {state!r} after {time.monotonic() - t0:.0f} s ({seen})")
            if time.monotonic() - last_reload > 20:
                page.reload()
                last_reload = time.monotonic()
            page.wait_for_timeout(1000)
        timings["run_wait_in_ui_s"] = time.monotonic() - t0
        # The header's badge turns to Success before the grid and task table refresh: reload
        # so the screenshot is consistent, and check the last task there too.
        page.reload()
        expect(run_state).to_have_text(re.compile(r"success", re.I))
        end_row = page.get_by_role("row").filter(has=page.get_by_role("link", name="evaluate", exact=True))
        expect(end_row.get_by_test_id("state-badge")).to_have_text(re.compile(r"success", re.I))
        shot(page, "08-run-success")

        # The run's graph (the UI's "g" shortcut toggles grid and graph): the seed's line,
        # one node per step and no edge but the steps' order and the teardown's.
        page.keyboard.press("g")
        nodes = page.locator(".react-flow__node")
        try:
            expect(nodes).to_have_count(len(GRAPH_TASKS), timeout=20_000)
            expect(page.locator(".react-flow__edge")).to_have_count(GRAPH_EDGES)
        except AssertionError:
            shot(page, "08-run-graph-unexpected")
            raise UICheckError(
                f"the run's graph shows {nodes.count()} tasks and {page.locator('.react-flow__edge').count()} edges, "
                f"not {len(GRAPH_TASKS)} and {GRAPH_EDGES}"
            ) from None
        labels = sorted(text.split("\n", 1)[0].strip() for text in nodes.all_inner_texts())
        if labels != sorted(GRAPH_TASKS):
            shot(page, "08-run-graph-unexpected")
            raise UICheckError(f"the run's graph shows the tasks {labels}, not {sorted(GRAPH_TASKS)}")
        shot(page, "08-run-graph")
        page.keyboard.press("g")  # back to the grid, the view the next steps start from

        # 6. Details tab: the run's conf, again in a Monaco editor.
        page.get_by_role("link", name="Details", exact=True).click()
        page.wait_for_url(re.compile(r"/details$"))
        conf_row = page.get_by_role("row").filter(has=page.get_by_role("cell", name="Conf", exact=True))
        conf_row.scroll_into_view_if_needed()
        expect(conf_row.locator(".monaco-editor")).to_be_visible()
        ui_conf = json.loads(monaco_text(page, conf_row))
        shot(page, "09-run-details-conf")

        api_run = rest_get(ctx, url, token, f"dags/{DAG_ID}/dagRuns/{run_id}")
        for source, got in (("UI Details", ui_conf), ("REST", api_run["conf"])):
            for name, value in conf.items():
                if got.get(name) != value:
                    raise UICheckError(f"{source} conf has {name}={got.get(name)!r}, not {value!r}")
        if api_run["state"] != "success":
            raise UICheckError(f"REST says run {run_id} is {api_run['state']}")

        # 7. The run's report: the plugin's "Report" tab on the run's page, an iframe of the
        # plugin's FastAPI view, which reads report.html from the storage root.
        t0 = time.monotonic()
        page.goto(page.url.removesuffix("/details"))
        page.get_by_role("link", name="Report", exact=True).click()
        page.wait_for_url(re.compile(r"/plugin/recommender-run-report$"))
        report = page.frame_locator("iframe")
        try:
            expect(report.locator("body[data-charts-drawn='4']")).to_be_attached(timeout=30_000)
            expect(report.locator("#headline")).to_contain_text("NDCG@10")
        except AssertionError:
            shot(page, "10-run-report-missing")
            raise UICheckError(f"run {run_id}: the Report tab shows no drawn report") from None
        timings["report_tab_s"] = time.monotonic() - t0
        shot(page, "10-run-report")

        # 8. The reports list, the plugin's entry in the navigation.
        page.goto(f"{url}/plugin/recommender-reports")
        reports = page.frame_locator("iframe")
        expect(reports.locator("#runs")).to_contain_text(run_key(run_id))
        shot(page, "11-reports-list")
        reports.get_by_role("link", name=run_key(run_id)).click()
        expect(reports.locator("body[data-charts-drawn='4']")).to_be_attached(timeout=30_000)
        shot(page, "12-report-from-the-list")
        return {
            "run_id": run_id,
            "states_seen_in_ui": seen,
            "ui_conf": ui_conf,
            "api_conf": api_run["conf"],
            "api_duration_s": api_run["duration"],
            "triggered_by": api_run.get("triggered_by"),
            "timings": {k: round(v, 2) for k, v in timings.items()},
        }
