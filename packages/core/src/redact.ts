/**
 * Connection strings as they may be shown in messages and logs: every secret they can carry masked. A
 * password hides in the user info (`redis://user:secret@host`) or in a query parameter
 * (`postgres://host/db?password=secret`, `?sslpassword=…`, `?token=…`); both become `***`.
 */

/** Query parameters that carry a secret, by name (any case; `_` and `-` ignored): `password`, `sslpassword`, `apiKey`, … */
const SECRET_PARAMS = new Set([
  'password',
  'passwd',
  'pass',
  'pwd',
  'sslpassword',
  'secret',
  'clientsecret',
  'token',
  'accesstoken',
  'authtoken',
  'key',
  'apikey',
  'auth',
]);

export const MASK = '***';

function isSecretParam(name: string): boolean {
  return SECRET_PARAMS.has(name.toLowerCase().replace(/[-_]/g, ''));
}

/**
 * `url` with its password and secret query parameters masked. A string that is not a URL is never echoed
 * (it may be a secret itself): `invalid` stands for it.
 */
export function redactUrl(url: string, invalid = '(invalid URL)'): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return invalid;
  }
  if (u.password) u.password = MASK;
  const params = [...u.searchParams];
  if (params.some(([name]) => isSecretParam(name))) {
    u.search = new URLSearchParams(
      params.map(([name, value]): [string, string] => [name, isSecretParam(name) ? MASK : value]),
    ).toString();
  }
  return u.toString();
}
