import { describe, expect, it } from 'vitest';
import { InvalidPathError, ObjectNotFoundError, checkBucket, checkObjectPath } from './driver.js';

describe('checkObjectPath', () => {
  it('returns safe relative paths unchanged', () => {
    for (const path of [
      'a',
      'a.jpg',
      'triage/user-1/job-2/3f2a.jpg',
      'a/b/c/d.e.f',
      'my photo (1).JPG',
      'é/ü.png',
      'a..b/c',
      '...',
      '.hidden/x',
    ]) {
      expect(checkObjectPath(path)).toBe(path);
    }
  });

  it('rejects escapes and malformed paths with InvalidPathError', () => {
    const bad = [
      '',
      '../x',
      '..',
      '.',
      'a/../../x',
      'a/..',
      '/etc/passwd',
      'C:/Windows',
      'c:x',
      'a//b',
      'a/',
      './a',
      'a/./b',
      'a/%2e%2e/b',
      '%2E%2E/x',
      'a%2fb',
      'a%5cb',
      'a%00b',
      'a/%252e%252e/b',
      'a%252fb',
      'a\\b',
      '..\\x',
      'a\u0000b',
      'a\nb',
      'a\tb',
      'a\u001fb',
      'a\u007fb',
      'x'.repeat(1025),
    ];
    for (const path of bad) {
      expect(() => checkObjectPath(path), JSON.stringify(path)).toThrow(InvalidPathError);
    }
  });

  it('accepts a path of exactly 1024 characters', () => {
    const path = 'x'.repeat(1024);
    expect(checkObjectPath(path)).toBe(path);
  });

  it('rejects non-strings', () => {
    expect(() => checkObjectPath(undefined as unknown as string)).toThrow(InvalidPathError);
    expect(() => checkObjectPath(42 as unknown as string)).toThrow(InvalidPathError);
  });

  it('names the offending path in the message', () => {
    expect(() => checkObjectPath('../x')).toThrow(/\.\.\/x/);
    expect(() => checkObjectPath('/etc/passwd')).toThrow(/absolute paths are not allowed: \/etc\/passwd/);
  });
});

describe('checkBucket', () => {
  it('accepts ordinary bucket names', () => {
    for (const b of ['photos', 'a', 'thumbs-2', 'my_bucket.v1', 'A9', 'x'.repeat(63)]) expect(checkBucket(b)).toBe(b);
  });

  it('rejects bad bucket names with InvalidPathError', () => {
    for (const b of ['', '..', '.', 'a/b', '/a', 'a\\b', '-a', '_a', '.a', 'a b', 'a\u0000', 'x'.repeat(64), 'é']) {
      expect(() => checkBucket(b), JSON.stringify(b)).toThrow(InvalidPathError);
    }
  });
});

describe('errors', () => {
  it('ObjectNotFoundError carries bucket and path', () => {
    const err = new ObjectNotFoundError('photos', 'a/b.jpg');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('ObjectNotFoundError');
    expect(err.bucket).toBe('photos');
    expect(err.path).toBe('a/b.jpg');
    expect(err.message).toBe('object not found: photos/a/b.jpg');
  });

  it('InvalidPathError is named', () => {
    const err = new InvalidPathError('nope');
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('InvalidPathError');
    expect(err.message).toBe('nope');
  });
});
