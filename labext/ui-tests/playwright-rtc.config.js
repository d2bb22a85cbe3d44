/**
 * The real-time collaboration spec: the same server as the suite, with jupyter-collaboration's RTC on
 * (jupyter_server_test_config.py reads CS3SYNC_UI_RTC). `jlpm playwright test -c playwright-rtc.config.js`.
 */
const suite = require('./playwright.config');

module.exports = {
  ...suite,
  testIgnore: undefined,
  testMatch: '**/rtc.spec.ts',
  webServer: {
    ...suite.webServer,
    env: { ...process.env, CS3SYNC_UI_RTC: '1' }
  }
};
