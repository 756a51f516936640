"""Swagger UI in a real browser: what an API consumer does on /docs, end to end.

Opens /docs in Chromium (driven by Playwright), logs in through "Try it out" on
POST /api/v1/auth/login, takes the access token from the response shown on the page,
"Authorize"s with it, and executes GET /api/v1/users/me, which must show 200. A CSP or
header change that breaks the page (a blocked script, a refused fetch) fails this.

Usage: docs_browser_test.py BASE_URL EMAIL PASSWORD   (the account must exist)
"""

import json
import sys

from playwright.sync_api import expect, sync_playwright

CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 20_000


def operation(page, method, path):
    """The collapsed operation block of Swagger UI for METHOD PATH, opened."""
    block = page.locator(f".opblock-{method}").filter(
        has=page.locator(".opblock-summary-path", has_text=path)
    ).filter(
        # "/api/v1/users/me" must not also match "/api/v1/users/me/password".
        has=page.locator(f'.opblock-summary-path[data-path="{path}"]')
    )
    block.locator(".opblock-summary").first.click()
    return block.first


def execute(block):
    block.locator("button.try-out__btn").click()
    return block


def main():
    base, email, password = sys.argv[1:4]
    errors = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        # Anything the CSP blocks, a script that throws, or a resource that fails shows up
        # here. Resource failures are judged by their response below, which names the URL
        # (browsers ask for /favicon.ico, which the service does not serve).
        page.on(
            "console",
            lambda m: m.type == "error"
            and not m.text.startswith("Failed to load resource")
            and errors.append(m.text),
        )
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "response",
            lambda r: r.status >= 400
            and not r.url.endswith("/favicon.ico")
            and errors.append(f"{r.status} {r.url}"),
        )
        page.goto(f"{base}/docs")
        expect(page.locator(".opblock").first).to_be_visible()

        login = execute(operation(page, "post", "/api/v1/auth/login"))
        login.locator("textarea.body-param__text").fill(
            json.dumps({"email": email, "password": password})
        )
        login.locator("button.execute").click()
        response = login.locator(".live-responses-table .response").first
        expect(response.locator(".response-col_status")).to_contain_text("200")
        body = json.loads(response.locator(".microlight").first.inner_text())
        token = body["access_token"]

        page.locator("button.authorize").first.click()
        dialog = page.locator(".modal-ux")
        dialog.locator("input[type=text], input:not([type])").first.fill(token)
        dialog.locator("button.authorize").click()
        dialog.locator("button.btn-done").click()

        me = execute(operation(page, "get", "/api/v1/users/me"))
        me.locator("button.execute").click()
        answer = me.locator(".live-responses-table .response").first
        expect(answer.locator(".response-col_status")).to_contain_text("200")
        shown = json.loads(answer.locator(".microlight").first.inner_text())
        browser.close()

    if shown.get("email") != email:
        sys.exit(f"docs-browser-test: /users/me showed {shown!r}, not {email}")
    if errors:
        sys.exit("docs-browser-test: the page logged errors:\n  " + "\n  ".join(errors))
    print(f"docs-browser-test: logged in, authorized and read /users/me as {email} in Swagger UI")


if __name__ == "__main__":
    main()
