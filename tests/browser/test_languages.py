"""The app in Chinese, in headless Chromium: a ``?lang=`` link opens in that language, the
epoch player's own buttons speak it, the choice survives the sidebar's page links, and the
sidebar picker switches back to English."""

from __future__ import annotations

import re

from tests.browser.harness import player, wait_for_app_idle, wait_for_frame

TRAIN_TIMEOUT_MS = 240_000


def test_a_chinese_link_opens_the_app_and_the_player_in_chinese(app, page, shots):
    page.goto(f"{app.url}/Explore?preset=tutorial_cnn&layer=conv1&lang=zh-Hans")
    page.get_by_text(re.compile(r"已完成（3/3 轮）")).wait_for(timeout=TRAIN_TIMEOUT_MS)
    wait_for_app_idle(page)
    assert page.get_by_role("heading", name="探索一次运行").count() == 1
    assert "lang=zh-Hans" in page.evaluate("location.href")
    frame = player(page)
    wait_for_frame(frame, 3)
    frame.get_by_role("button", name="上一个快照").click()  # its aria-label, from Python
    wait_for_frame(frame, 2)
    assert "3/4" in frame.locator("#label").inner_text()
    frame.get_by_role("button", name=re.compile("播放")).click()
    wait_for_frame(frame, 3, timeout_ms=15_000)
    frame.get_by_role("button", name=re.compile("播放")).wait_for(timeout=5_000)  # stopped
    page.screenshot(path=str(shots / "languages-explore-zh-Hans.png"), full_page=True)

    page.get_by_role("link", name="运行记录").click()  # a sidebar page link keeps lang=
    page.get_by_role("heading", name="运行记录").wait_for(timeout=30_000)
    assert "lang=zh-Hans" in page.evaluate("location.href")

    page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="English").click()
    page.get_by_role("heading", name="Runs").wait_for(timeout=30_000)
    assert "lang=" not in page.evaluate("location.href")
