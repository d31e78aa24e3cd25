"""The storefront and the operations console in a real browser (headless Chromium through
Playwright), driven the way a person drives them: through what the pages show and what
can be clicked, never through the API behind them.

Usage: journeys.py --url URL --shots DIR [--chromium PATH]
Run by local/tests/browser.rs against a fresh `shop-local up`; prints one line per journey
with its duration and exits non-zero if any failed. Screenshots of every page, desktop and
phone, go to DIR.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path

from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
# Long enough for the saga on a loaded 2-core machine; a guard, not a performance target.
SAGA = 90_000
# Names made unique to this run, so that a stack that ran the journeys before does not
# confuse them (two products, or two basket lines, of the same name).
RUN = format(int(time.time() * 1000) % 46656, "x")
FAILED_4XX = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d ")
# Flags that keep Chromium off the network this machine does not have.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


class Shop:
    def __init__(self, browser: Browser, url: str, shots: Path) -> None:
        self.browser = browser
        self.url = url.rstrip("/")
        self.shots = shots
        self.console_errors: list[str] = []
        self.contexts: list[BrowserContext] = []

    def person(self, viewport: dict = DESKTOP) -> Page:
        """A new browser profile (its own session storage): one person."""
        context = self.browser.new_context(viewport=viewport)
        self.contexts.append(context)
        page = context.new_page()
        # Chromium logs every 4xx answer to a fetch as a console error; those are the API
        # saying no (a product not stocked yet, an order not recorded yet), which the pages
        # show in words. Script errors, and any 5xx, are what must not happen.
        page.on("console", lambda m: self.console_errors.append(f"{page.url}: {m.text}")
                if m.type == "error" and not FAILED_4XX.match(m.text) else None)
        page.on("pageerror", lambda e: self.console_errors.append(f"{page.url}: {e}"))
        page.on("response", lambda r: self.console_errors.append(f"{r.status} from {r.request.method} {r.url}")
                if r.status >= 500 else None)
        page.set_default_timeout(20_000)
        return page

    def open(self, page: Page, route: str = "#/") -> None:
        """Goes to `route` and waits until the app has shown it (a change of hash alone
        does not reload the page, so the old page's content is still there at first)."""
        page.goto(f"{self.url}/{route}")
        expect(page.locator("body")).to_have_attribute("data-shown", route)

    def sign_in(self, page: Page, user: str, admin: bool = False) -> None:
        self.open(page)
        page.get_by_role("button", name="Sign in").first.click()
        page.get_by_label("User name").fill(user)
        if admin:
            page.get_by_label(re.compile("Administrator")).check()
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_text(f"Signed in as {user}.")).to_be_visible()
        assert "code=" not in page.url, f"the code stays in the address bar: {page.url}"

    def shot(self, page: Page, name: str) -> None:
        page.screenshot(path=str(self.shots / f"{name}.png"), full_page=True)

    def close(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()


def create_product(shop: Shop, admin: Page, name: str, price_cents: int, stock: int) -> str:
    shop.open(admin, "#/admin/products")
    admin.get_by_role("link", name="New product").click()
    admin.get_by_label("Name").fill(name)
    admin.get_by_label("Category").fill("browser")
    admin.get_by_label("Description").fill("Made for the browser test.")
    admin.get_by_label("Price (in cents)").fill(str(price_cents))
    admin.get_by_role("button", name="Create").click()
    expect(admin.get_by_text(f"{name} created")).to_be_visible()
    admin.get_by_label("Units free to sell").fill(str(stock))
    admin.get_by_role("button", name="Set stock").click()
    expect(admin.locator(".stock")).to_have_text(f"{stock} free · 0 reserved · 0 shipped")
    return admin.url.rsplit("/", 1)[-1]


def buy(shop: Shop, shopper: Page, product: str, name: str, card: str) -> str:
    """Puts one `product` in the basket and checks out with the test card `card`; answers
    the order id, once the order page shows it."""
    shop.open(shopper, f"#/products/{product}")
    expect(shopper.get_by_role("heading", name=name, exact=True)).to_be_visible()
    # The basket learns a new product from its event, a moment after it was created.
    for _ in range(60):
        shopper.get_by_role("button", name="Put in basket").click()
        notice = shopper.locator("#notice")
        expect(notice).not_to_be_empty()
        if "in your basket" in notice.inner_text():
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"the basket never learned {name}")
    shopper.get_by_role("link", name="Basket").click()
    expect(shopper.get_by_role("link", name=name)).to_be_visible()
    shopper.get_by_role("link", name="Check out").click()
    shopper.get_by_label("Name").fill("Ada Lovelace")
    shopper.get_by_label("Address", exact=True).fill("12 St James's Square")
    shopper.get_by_label("City").fill("London")
    shopper.get_by_label("Postal code").fill("SW1Y 4JH")
    shopper.get_by_label(re.compile("Country")).fill("GB")
    shopper.get_by_label(card).check()
    shopper.get_by_role("button", name="Place order").click()
    expect(shopper.get_by_role("heading", name=re.compile("^Order "))).to_be_visible(timeout=SAGA)
    return shopper.url.rsplit("/", 1)[-1]


def status_of(page: Page):
    return page.locator(".status-line .badge")


def reopen_until(shop: Shop, page: Page, route: str, ready) -> None:
    """Opens `route`, then reloads it until `ready(page)` holds: for the admin's pages, which
    show what the saga did only when asked again. Going to the route it already shows would
    be a same-document navigation that asks the API nothing: a reload asks again."""
    deadline = time.monotonic() + SAGA / 1000
    shop.open(page, route)
    while True:
        page.wait_for_load_state("networkidle")
        if ready(page):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{route} never showed what was expected")
        time.sleep(0.5)
        page.reload()
        expect(page.locator("body")).to_have_attribute("data-shown", route)


def journey_order_to_shipped(shop: Shop) -> None:
    """Admin creates a product and stocks it; a shopper buys it and watches it get paid;
    the admin dispatches it; the shopper sees it shipped, without reloading."""
    admin = shop.person()
    shop.sign_in(admin, "browser-admin", admin=True)
    product = create_product(shop, admin, f"Browser Teapot {RUN}", 2450, 3)
    shop.shot(admin, "admin-product-desktop")

    shopper = shop.person()
    shop.sign_in(shopper, "browser-ada")
    order = buy(shop, shopper, product, f"Browser Teapot {RUN}", "Test card: approved")
    expect(status_of(shopper)).to_have_text("Paid", timeout=SAGA)
    expect(shopper.locator(".timeline .step.done")).to_have_count(3)
    shop.shot(shopper, "order-paid-desktop")
    reloads = []
    shopper.on("framenavigated", lambda frame: reloads.append(frame.url))
    # From here on the page learns of the order's changes over its WebSocket: while it is
    # open, the page does not ask the API for the order at all.
    expect(shopper.locator("body")).to_have_attribute("data-live", "open")
    order_reads = []
    shopper.on("request", lambda r: order_reads.append(r.url)
               if r.method == "GET" and r.url.endswith(f"/orders/{order}") else None)

    operator = shop.person()
    shop.sign_in(operator, "browser-operator", admin=True)
    shop.open(operator, "#/ops")
    expect(operator.get_by_text("Waiting for the next event…")).to_be_visible()
    expect(operator.locator(".live-state")).to_have_text("live")

    row = admin.locator("tr", has=admin.locator(f"a[href='#/orders/{order}']"))
    reopen_until(shop, admin, "#/admin/shipments?status=pending", lambda page: row.count() == 1)
    row.get_by_role("button", name="Dispatch").click()
    expect(admin.get_by_text(f"Order {order}: dispatched.")).to_be_visible()
    shop.shot(admin, "admin-shipments-desktop")

    # The operator watches the dispatch cross the bus, and ordering answer it.
    dispatched = operator.locator(".events tr", has_text="ShipmentDispatched")
    expect(dispatched.filter(has_text=order[-8:])).to_have_count(1, timeout=SAGA)
    expect(operator.locator(".events tr", has_text="OrderShipped").filter(has_text=order[-8:])).to_have_count(1, timeout=SAGA)
    shop.shot(operator, "operations-live-desktop")

    expect(status_of(shopper)).to_have_text("Shipped", timeout=SAGA)
    expect(shopper.locator(".timeline .step.done")).to_have_count(4)
    assert reloads == [], f"the order page reloaded: {reloads}"
    assert order_reads == [], f"the order page polled while its socket was open: {order_reads}"
    # The operator's live orders: the order, shipped, pushed to an admin's connection.
    expect(operator.locator(f".orders-live tr[data-order='{order}'] .badge")).to_have_text("Shipped", timeout=SAGA)
    shop.shot(shopper, "order-shipped-live-desktop")
    shop.shot(operator, "operations-orders-live-desktop")
    shop.open(admin, f"#/admin/products/{product}")
    expect(admin.locator(".stock")).to_have_text("2 free · 0 reserved · 1 shipped")
    # A best-seller: the admin spreads its stock over two shards; the counters stay sums.
    admin.get_by_label("Shards").fill("2")
    admin.get_by_role("button", name="Set stock").click()
    expect(admin.locator(".stock")).to_have_text("2 free · 0 reserved · 1 shipped · 2 shards")


def journey_declined_card(shop: Shop) -> None:
    """A declined card ends the order cancelled, with the reason shown."""
    admin = shop.person()
    shop.sign_in(admin, "browser-admin", admin=True)
    product = create_product(shop, admin, f"Browser Kettle {RUN}", 3900, 2)
    shopper = shop.person()
    shop.sign_in(shopper, "browser-bob")
    buy(shop, shopper, product, f"Browser Kettle {RUN}", "Test card: declined (insufficient funds)")
    expect(status_of(shopper)).to_have_text("Cancelled", timeout=SAGA)
    expect(shopper.locator(".status-line")).to_contain_text("the card was declined")
    shop.shot(shopper, "order-declined-desktop")


def journey_cancel_after_payment(shop: Shop) -> None:
    """A cancel after payment: cancelling, then cancelled; the admin sees the refund."""
    admin = shop.person()
    shop.sign_in(admin, "browser-admin", admin=True)
    product = create_product(shop, admin, f"Browser Lamp {RUN}", 5600, 2)
    shopper = shop.person()
    shop.sign_in(shopper, "browser-cat")
    order = buy(shop, shopper, product, f"Browser Lamp {RUN}", "Test card: approved")
    expect(status_of(shopper)).to_have_text("Paid", timeout=SAGA)
    # The admin has the payment open before the cancel: the refund shows only when asked again.
    reopen_until(
        shop,
        admin,
        f"#/admin/payments?order={order}",
        lambda page: page.locator(".facts .badge", has_text="Succeeded").count() == 1,
    )
    shopper.once("dialog", lambda dialog: dialog.accept())
    shopper.get_by_role("button", name="Cancel order").click()
    expect(status_of(shopper)).to_have_text("Cancelled", timeout=SAGA)
    expect(shopper.locator(".status-line")).to_contain_text("you asked to cancel")
    expect(shopper.get_by_role("button", name="Cancel order")).to_have_count(0)
    refunded = admin.locator(".facts .badge", has_text="Refunded")
    reopen_until(shop, admin, f"#/admin/payments?order={order}", lambda page: refunded.count() == 1)
    shop.shot(admin, "admin-payment-desktop")


def journey_nobody_sees_what_is_not_theirs(shop: Shop) -> None:
    """A shopper gets no admin page and no other user's order; the operations view needs no
    sign-in locally, as it is shop-local's own."""
    admin = shop.person()
    shop.sign_in(admin, "browser-admin", admin=True)
    product = create_product(shop, admin, f"Browser Mug {RUN}", 1200, 5)
    owner = shop.person()
    shop.sign_in(owner, "browser-dan")
    order = buy(shop, owner, product, f"Browser Mug {RUN}", "Test card: approved")

    other = shop.person()
    shop.sign_in(other, "browser-eve")
    expect(other.get_by_role("link", name="Products")).to_have_count(0)
    for route in ["#/admin/products", "#/admin/shipments", "#/admin/payments"]:
        shop.open(other, route)
        expect(other.get_by_role("heading", name="Administrators only")).to_be_visible()
    shop.open(other, f"#/orders/{order}")
    expect(other.get_by_role("heading", name="No such order")).to_be_visible()
    expect(other.get_by_text("Ada Lovelace")).to_have_count(0)

    anonymous = shop.person()
    shop.open(anonymous, "#/orders")
    expect(anonymous.get_by_role("heading", name="Sign in first")).to_be_visible()


# Every page, for the tour: (name, route, who), who being None, "shopper" or "admin".
PAGES = [
    ("catalog", "#/", None),
    ("product", "#/products/{product}", "shopper"),
    ("basket", "#/basket", "shopper"),
    ("checkout", "#/checkout", "shopper"),
    ("orders", "#/orders", "shopper"),
    ("order", "#/orders/{order}", "shopper"),
    ("admin-products", "#/admin/products", "admin"),
    ("admin-edit-product", "#/admin/products/{product}", "admin"),
    ("admin-new-product", "#/admin/products/new", "admin"),
    ("admin-shipments", "#/admin/shipments", "admin"),
    ("admin-payment", "#/admin/payments?order={order}", "admin"),
    ("operations", "#/ops", "admin"),
]


def journey_every_page_on_desktop_and_phone(shop: Shop) -> None:
    """Every page at both sizes: a screenshot each, and on the phone no sideways scroll."""
    admin = shop.person()
    shop.sign_in(admin, "browser-admin", admin=True)
    product = create_product(shop, admin, f"Browser Tour Plant {RUN}", 2200, 4)
    shopper = shop.person()
    shop.sign_in(shopper, "browser-fay")
    order = buy(shop, shopper, product, f"Browser Tour Plant {RUN}", "Test card: approved")
    expect(status_of(shopper)).to_have_text("Paid", timeout=SAGA)
    shop.open(shopper, f"#/products/{product}")
    shopper.get_by_role("button", name="Put in basket").click()
    expect(shopper.locator("#notice")).to_contain_text("in your basket")
    for name, size in [("desktop", DESKTOP), ("phone", PHONE)]:
        for page in (admin, shopper):
            page.set_viewport_size(size)
        for page_name, route, who in PAGES:
            page = admin if who == "admin" else shopper
            shop.open(page, route.format(product=product, order=order))
            expect(page.locator("main h1")).to_be_visible()
            if page_name == "operations":
                # Its event feed never goes idle.
                expect(page.locator("text=empty").first).to_be_visible()
            else:
                page.wait_for_load_state("networkidle")
            shop.shot(page, f"{page_name}-{name}")
            if name == "phone":
                wide = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
                assert wide <= 0, f"{page_name} scrolls sideways on a phone by {wide}px"
    signin = shop.person(PHONE)
    shop.open(signin)
    signin.get_by_role("button", name="Sign in").first.click()
    expect(signin.get_by_label("User name")).to_be_visible()
    shop.shot(signin, "sign-in-phone")


JOURNEYS = [
    journey_order_to_shipped,
    journey_declined_card,
    journey_cancel_after_payment,
    journey_nobody_sees_what_is_not_theirs,
    journey_every_page_on_desktop_and_phone,
]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--shots", required=True, type=Path)
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    args.shots.mkdir(parents=True, exist_ok=True)
    for old in args.shots.glob("*.png"):
        old.unlink()
    failed = 0
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
        shop = Shop(browser, args.url, args.shots)
        for journey in JOURNEYS:
            started = time.monotonic()
            try:
                journey(shop)
                outcome = "ok"
            except Exception:  # noqa: BLE001 - every failure is reported, then the next journey runs
                failed += 1
                outcome = "FAILED"
                pages = [page for context in shop.contexts for page in context.pages]
                for n, page in enumerate(pages):
                    page.screenshot(path=str(args.shots / f"FAILED-{journey.__name__}-{n}.png"), full_page=True)
                traceback.print_exc()
            finally:
                shop.close()
            print(f"browser: {journey.__name__}: {outcome} in {time.monotonic() - started:.1f} s", flush=True)
        browser.close()
    if shop.console_errors:
        failed += 1
        print("browser: console errors:", *shop.console_errors, sep="\n  ")
    print(f"browser: {'failed' if failed else 'all journeys passed'}; screenshots in {args.shots}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
