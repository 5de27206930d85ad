// npm run chaos:view -- DIR: open a chaos run's report.html in headless Chromium as a user would:
// the page's script must run to its end, and a screenshot is written next to it (report.png).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

function findBrowser(): string | undefined {
  for (const name of ['chromium', 'chromium-browser', 'google-chrome']) {
    try {
      const path = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (path !== '' && existsSync(path)) return path;
    } catch {
      // not this one
    }
  }
  return undefined;
}

function main(): number {
  const dir = process.argv[2];
  if (dir === undefined) {
    console.error('usage: npm run chaos:view -- <results dir of a chaos run>');
    return 2;
  }
  const report = resolve(dir, 'report.html');
  if (!existsSync(report)) {
    console.error(`error: no report.html in ${resolve(dir)}; give the directory a chaos run printed`);
    return 2;
  }
  const browser = findBrowser();
  if (browser === undefined) {
    console.error('error: no chromium, chromium-browser or google-chrome on the PATH; install one (Debian: apt-get install chromium) or open the file in any browser');
    return 2;
  }
  const profile = mkdtempSync(join(tmpdir(), 'raftbus-chaos-view-'));
  try {
    const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`];
    const dom = execFileSync(browser, [...flags, '--dump-dom', pathToFileURL(report).href], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
    if (!/<html[^>]*data-ready="yes"/.test(dom)) {
      console.error('error: the report loaded but its script did not finish (no data-ready="yes")');
      return 1;
    }
    const screenshot = resolve(dir, 'report.png');
    execFileSync(browser, [...flags, '--hide-scrollbars', '--window-size=1100,1600', `--screenshot=${screenshot}`, pathToFileURL(report).href], { timeout: 60_000, stdio: 'ignore' });
    const verdict = /data-verdict="(PASS|FAIL)"/.exec(dom)?.[1] ?? 'unknown';
    console.log(`report loads in ${browser}; verdict ${verdict}; screenshot ${screenshot}`);
    return 0;
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
}

process.exitCode = main();
