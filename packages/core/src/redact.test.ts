import { describe, expect, it } from 'vitest';
import { redactUrl } from './redact.js';

describe('redactUrl', () => {
  it('masks the password of the user info, and keeps the rest', () => {
    expect(redactUrl('postgres://postgres:s3cret@db.example.com:5432/postgres')).toBe(
      'postgres://postgres:***@db.example.com:5432/postgres',
    );
    expect(redactUrl('rediss://default:p%40ss@cache.example.com:6380/2')).toBe(
      'rediss://default:***@cache.example.com:6380/2',
    );
    expect(redactUrl('redis://127.0.0.1:6379')).toBe('redis://127.0.0.1:6379');
    expect(redactUrl('redis://user@127.0.0.1:6379')).toBe('redis://user@127.0.0.1:6379');
  });

  it('masks secret query parameters, whatever their case, and keeps the others in their order', () => {
    expect(redactUrl('postgres://u@h/db?sslmode=require&password=s3cret&application_name=triage')).toBe(
      'postgres://u@h/db?sslmode=require&password=***&application_name=triage',
    );
    expect(redactUrl('postgres://h/db?user=u&PASS=a&sslpassword=b&sslcert=/c.pem')).toBe(
      'postgres://h/db?user=u&PASS=***&sslpassword=***&sslcert=%2Fc.pem',
    );
    expect(redactUrl('https://h/p?token=t1&token=t2&key=k&api_key=a&apiKey=b&client-secret=c&auth=d&keep=1')).toBe(
      'https://h/p?token=***&token=***&key=***&api_key=***&apiKey=***&client-secret=***&auth=***&keep=1',
    );
    expect(redactUrl('redis://:pw@h:1/0?password=pw2')).toBe('redis://:***@h:1/0?password=***');
    // Percent-encoded names are matched once decoded.
    expect(redactUrl('postgres://h/db?pass%77ord=x')).toBe('postgres://h/db?password=***');
  });

  it('never echoes what is not a URL: it may be a secret itself', () => {
    expect(redactUrl('s3cret')).toBe('(invalid URL)');
    expect(redactUrl('://x:y@', '(invalid Redis URL)')).toBe('(invalid Redis URL)');
  });

  it('leaves a URL without secrets exactly as it was given', () => {
    for (const url of ['postgres://u@h:5432/db?sslmode=verify-full&sslrootcert=%2Fca.pem', 'redis://h:6379/0?family=6'])
      expect(redactUrl(url)).toBe(url);
  });
});
