"""Debian's Chromium, headless, driven by Playwright: what the helpdesk report's browser test and
its screenshot in ``docs/`` see the page with.

``python -m local_runner.browser REPORT.html SCREENSHOT.png`` opens a report offline and saves
a screenshot of it (how ``docs/helpdesk-report.png`` is made from the demo tenant's report).

Playwright's own browsers are never downloaded: it drives ``/usr/bin/chromium`` (``make
install`` puts it there with apt-get when it is missing), in a fresh profile each time, with
everything that would reach the network at start-up switched off.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Final

import typer
from playwright.async_api import BrowserContext, async_playwright

CHROMIUM: Final = Path("/usr/bin/chromium")
CHROMIUM_ARGS: Final = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
"""No sandbox: the tests run as root in a container, where Chromium's sandbox cannot start."""


class ChromiumMissingError(RuntimeError):
    """``/usr/bin/chromium`` is not installed."""

    def __init__(self) -> None:
        super().__init__(f"{CHROMIUM} is missing: `make install` installs Debian's chromium "
                         "(apt-get install -y chromium)")


@asynccontextmanager
async def headless_chromium(
    *, offline: bool = True, width: int = 1280, height: int = 900
) -> AsyncIterator[BrowserContext]:
    """A headless Chromium with a fresh profile (removed afterwards); ``offline`` cuts it off
    from every network, so a page that needs one shows it.

    Raises:
        ChromiumMissingError: Chromium is not installed.
    """
    if not CHROMIUM.exists():
        raise ChromiumMissingError
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        async with async_playwright() as playwright:
            context = await playwright.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=list(CHROMIUM_ARGS),
                offline=offline, viewport={"width": width, "height": height},
            )
            try:
                yield context
            finally:
                await context.close()


async def screenshot(page_file: Path, png: Path, *, width: int = 1280, height: int = 900,
                     full_page: bool = False) -> None:
    """Open ``page_file`` (an absolute path) offline and save what the window shows (the whole
    page with ``full_page``) as ``png``."""
    async with headless_chromium(width=width, height=height) as context:
        page = await context.new_page()
        await page.goto(page_file.as_uri())
        await page.screenshot(path=str(png), full_page=full_page)


cli = typer.Typer(add_completion=False, help=__doc__)


@cli.command()
def main(
    page_file: Annotated[Path, typer.Argument(help="the HTML page (e.g. a report)")],
    png: Annotated[Path, typer.Argument(help="where the screenshot goes")],
    width: Annotated[int, typer.Option(min=320, max=4000)] = 1280,
    height: Annotated[int, typer.Option(min=240, max=4000)] = 900,
    full_page: Annotated[bool, typer.Option("--full-page", help="the whole page")] = False,
) -> None:
    """Save a screenshot of an HTML page as headless Chromium shows it, offline."""
    if not page_file.is_file():
        typer.echo(f"error: {page_file}: no such file", err=True)
        raise typer.Exit(2)
    png.parent.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(screenshot(page_file.resolve(), png, width=width, height=height,
                               full_page=full_page))
    except ChromiumMissingError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(str(png))


if __name__ == "__main__":
    cli()
