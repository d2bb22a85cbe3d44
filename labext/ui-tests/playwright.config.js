/**
 * Galata with Debian's chromium (never a downloaded browser).
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

module.exports = {
  ...baseConfig,
  // rtc.spec.ts needs real-time collaboration on: playwright-rtc.config.js runs it.
  testIgnore: '**/rtc.spec.ts',
  // Generous: CI machines with 2 cores run this beside the rest of the suite.
  timeout: 240000,
  expect: { timeout: 30000 },
  workers: 1,
  retries: 0,
  use: {
    ...baseConfig.use,
    video: 'off',
    trace: 'off',
    viewport: { width: 1400, height: 900 },
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH || '/usr/bin/chromium',
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-dev-shm-usage',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic'
      ]
    }
  },
  reporter: [['list'], ['html', { open: 'never' }]],
  webServer: {
    command: 'jlpm start',
    url: 'http://localhost:8888/lab',
    timeout: 120000,
    reuseExistingServer: !process.env.CI
  }
};
