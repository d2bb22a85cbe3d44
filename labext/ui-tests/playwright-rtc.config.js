/**
 * The real-time collaboration spec: the same server as the suite, with jupyter-collaboration's RTC on
 * (jupyter_server_test_config.py reads CS3SYNC_UI_RTC). `jlpm playwright test -c playwright-rtc.config.js`.
 * The merge spec runs here too: with RTC the room saves what it opened, which turns one conflict into two
 * entries (docs/collaboration.md); its Keep theirs must settle both. (conflicts.spec.ts clicks Keep mine
 * within a second of opening, racing the room's first save: not run here yet, see collaboration.md.)
 */
const suite = require('./playwright.config');

module.exports = {
  ...suite,
  testIgnore: undefined,
  testMatch: ['**/rtc.spec.ts', '**/merge.spec.ts'],
  webServer: {
    ...suite.webServer,
    env: { ...process.env, CS3SYNC_UI_RTC: '1' }
  }
};
