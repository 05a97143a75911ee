"""Touch and accessibility of the dashboard and a strategy page in real headless Chromium.

axe-core 4.14.1 (vendored in tests/tools/vendor/axe-core/, from the npm registry) is injected into
each page, with every <details> opened and the table shown, and must report no violation of the
WCAG 2.0/2.1/2.2 A and AA rules or its best practices, in light and dark mode, on a phone (390 × 844)
and a desktop (1280 × 800). Every visible tap target (links, buttons, summaries, inputs, labels) is
at least 44 × 44 CSS px. Chromium and Playwright as in test_browser.py.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.tools.test_browser import artifact, browser, open_page, served  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]
#: Smallest tap target, CSS px (Apple's Human Interface Guidelines; WCAG 2.5.5 AAA).
MIN_TARGET_PX = 44

_TARGETS = """() => {
  const sel = 'a[href], button, summary, input:not([type=hidden]), select, textarea, label, [role=button], [tabindex="0"]';
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (el.closest('.chart')) continue;                       /* plotly's own drawing, not page controls */
    if (el.matches('label') && !el.querySelector('input')) continue;
    if (el.matches('input[type=checkbox]') && el.closest('label.fchip')) continue;   /* its label is the target */
    if (el.matches('[tabindex="0"]') && !el.matches('a, button, summary, input')) continue;   /* scroll regions */
    const r = el.getBoundingClientRect();
    const st = getComputedStyle(el);
    if (r.width === 0 || r.height === 0 || st.visibility === 'hidden' || el.closest('[hidden]')) continue;
    if (el.closest('details:not([open])') && !el.matches('summary')) continue;
    out.push([el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' ' + (el.textContent || '').trim().slice(0, 30),
              Math.round(r.width * 10) / 10, Math.round(r.height * 10) / 10]);
  }
  return out;
}"""


def _pages(served) -> dict[str, str]:  # noqa: F811
    pair, tf, entry_set = served.promoted[0]
    return {"dashboard": served.server.url, "strategy": f"{served.base}/s-{pair}_{tf}_{entry_set}.html"}


def _open_everything(page) -> None:
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    if page.locator(".chart[data-src]").count():
        page.locator(".chart .main-svg").first.wait_for(state="attached", timeout=20_000)


@pytest.mark.parametrize("which", ["dashboard", "strategy"])
@pytest.mark.parametrize("size", ["phone", "desktop", "phone-dark", "desktop-dark"])
def test_axe_core_reports_no_violation(browser, served, size, which):  # noqa: F811
    ctx, page, problems = open_page(browser, _pages(served)[which], size)
    try:
        _open_everything(page)
        page.add_script_tag(content=AXE.read_text(encoding="utf-8"))
        result = page.evaluate("tags => axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: "
                               "['violations']})", AXE_TAGS)
        found = [f"{v['id']} ({v['impact']}): {v['help']} — " + "; ".join(
            n["target"][0] if isinstance(n["target"][0], str) else str(n["target"]) for n in v["nodes"][:5])
            for v in result["violations"]]
        assert found == [], "\n".join(found)
        assert result["testEngine"]["version"] == "4.14.1" and problems == []
    finally:
        ctx.close()


@pytest.mark.parametrize("which", ["dashboard", "strategy"])
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_every_tap_target_is_at_least_44_px(browser, served, size, which):  # noqa: F811
    ctx, page, _ = open_page(browser, _pages(served)[which], size)
    try:
        _open_everything(page)
        targets = page.evaluate(_TARGETS)
        assert len(targets) >= (40 if which == "dashboard" else 8)
        small = [t for t in targets if t[1] < MIN_TARGET_PX - 0.5 or t[2] < MIN_TARGET_PX - 0.5]
        assert small == [], f"{len(small)} of {len(targets)} targets under {MIN_TARGET_PX} px: {small[:12]}"
        page.screenshot(path=artifact(f"{which}-{size}-all-open.png"), full_page=True)
    finally:
        ctx.close()
