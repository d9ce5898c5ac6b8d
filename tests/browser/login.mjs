// Logging in and out: /login's form#login with a user and a password; a wrong one shows .error,
// a right one shows form#logout, whose button logs out again.
//
// Parameters: base, tries ([{user, password}], each in a fresh context: no cookies), logout
// (after a try that logged in, also log out and then ask for /publish).
// Result: tries, one per try: url (after the form was sent), error (text of .error, or null),
// loggedIn (form#logout shown), form {user, password, submit} (the fields /login has); with
// logout also afterLogout {url, loggedIn, publishForm, loginForm} (what /publish shows once
// logged out). dialogs, errors (script errors) of every page.
import { login, newPage, open, run, submit, submitButton, text } from './lib.mjs';

await run(async (browser, p) => {
  const tries = [];
  const dialogs = [];
  const errors = [];
  for (const t of p.tries) {
    const page = await newPage(browser);
    await open(page, `${p.base}/login`);
    const form = {
      user: await page.locator('form#login input[name=user]').count(),
      password: await page.locator('form#login input[name=password][type=password]').count(),
      submit: await page.locator(submitButton('form#login')).count(),
    };
    await login(page, p.base, t.user, t.password);
    const result = {
      url: page.url(),
      error: await text(page, '.error'),
      loggedIn: (await page.locator('form#logout').count()) > 0,
      form,
    };
    if (p.logout && result.loggedIn) {
      await submit(page, 'form#logout');
      await page.goto(`${p.base}/publish`);
      result.afterLogout = {
        url: page.url(),
        loggedIn: (await page.locator('form#logout').count()) > 0,
        publishForm: await page.locator('form#publish').count(),
        loginForm: await page.locator('form#login').count(),
      };
    }
    tries.push(result);
    dialogs.push(...page.evert.dialogs);
    errors.push(...page.evert.errors);
    await page.context().close();
  }
  return { tries, dialogs, errors };
});
