"""A real browser for the end-to-end tests: Debian's headless Chromium driven through
chromium-driver by python3-selenium (tests/setup.sh installs all three).

The tests that use it run in the normal build. They are skipped, with a message saying why, only
when Chromium (or Selenium) is missing AND the server under test is the ASan+UBSan build
(AC_SANITIZE=1 in the environment, set by CMake); in the normal build a missing browser fails."""
import os
import shutil
import time
import unittest

from harness import BIN

SANITIZED = os.environ.get("AC_SANITIZE") == "1"
SCREENSHOTS = os.path.join(os.path.dirname(os.path.abspath(BIN)), "screenshots")


def _missing():
    """What is missing for a browser test, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "python3-selenium (for this interpreter)"
    for name in ("chromium", "chromedriver"):
        if shutil.which(name) is None and not os.path.exists("/usr/bin/" + name):
            return name
    return None


def start(case_cls, width=1300, height=1000):
    """Starts headless Chromium for a TestCase class and registers its end (a class cleanup).
    Returns the WebDriver."""
    missing = _missing()
    if missing is not None:
        message = (f"{missing} is not installed: the browser tests need chromium, chromium-driver and "
                   f"python3-selenium (bash tests/run_all.sh installs them)")
        if SANITIZED:
            raise unittest.SkipTest(message + "; skipped in the ASan build only")
        raise AssertionError(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-extensions", "--no-first-run", "--password-store=basic",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(service=service, options=opts)
    case_cls.addClassCleanup(driver.quit)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def screenshot(driver, name, full_page=True):
    """Writes SCREENSHOTS/<name>.png (the whole page's height when full_page) for a reviewer."""
    os.makedirs(SCREENSHOTS, exist_ok=True)
    path = os.path.join(SCREENSHOTS, name + ".png")
    size = driver.get_window_size()
    try:
        if full_page:
            height = driver.execute_script("return Math.max(document.body.scrollHeight, 600)")
            driver.set_window_size(size["width"], min(int(height) + 40, 8000))
        driver.save_screenshot(path)
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def wait_for(driver, script, timeout=60, what=None, *args):
    """Evaluates `return <script>` in the page until it is truthy; returns that value. Polls every
    50 ms (in the browser, so it costs the server nothing)."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = driver.execute_script("return " + script, *args)
        except Exception as e:  # the page is navigating: try again
            last = e
        if last and not isinstance(last, Exception):
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or script} (last: {last!r})")
        time.sleep(0.05)


def csp_violations(driver):
    """Console messages about Content-Security-Policy refusals since the last call."""
    return [e["message"] for e in driver.get_log("browser")
            if "Content Security Policy" in e["message"] or "Refused to" in e["message"]]
