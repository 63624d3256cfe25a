import { describe, expect, it } from 'vitest';
import { REDACTION_MARKER, redact, redactAll, redactJson } from '../../server/redaction/redaction';

/*
 * Realistic-looking but fake secrets, one per supported kind and provider. Each value is checked
 * to disappear completely, and the text around it to stay.
 */
export const SECRET_SAMPLES: Array<{ name: string; text: string; secret: string; kind: string; keep?: string }> = [
  { name: 'OpenAI legacy key', text: 'my key is sk-4fT9aQ2LmZ8xWc7Rb3YhN1pK6sVd0EgJuT3BlbkFJ ok', secret: 'sk-4fT9aQ2LmZ8xWc7Rb3YhN1pK6sVd0EgJuT3BlbkFJ', kind: 'api_key' },
  {
    name: 'OpenAI project key',
    text: 'OPENAI key sk-proj-Q7x2Lm9Vb4Nc8Zt1Rw6Ys3Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx7Cv4Bn9Mm1 thanks',
    secret: 'sk-proj-Q7x2Lm9Vb4Nc8Zt1Rw6Ys3Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx7Cv4Bn9Mm1',
    kind: 'api_key',
  },
  {
    name: 'Anthropic key',
    text: 'use sk-ant-api03-Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q6Er8Ty0Ui2Op4As6Df8Gh0Jk2Lz4Xc6Vb8Nm0Qa2Ws4Ed6Rf8Tg0Yh2Uj4IkAA please',
    secret: 'sk-ant-api03-Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q6Er8Ty0Ui2Op4As6Df8Gh0Jk2Lz4Xc6Vb8Nm0Qa2Ws4Ed6Rf8Tg0Yh2Uj4IkAA',
    kind: 'api_key',
  },
  { name: 'GitHub classic token', text: 'token ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo end', secret: 'ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo', kind: 'token' },
  { name: 'GitHub OAuth token', text: 'gho_3Xc5Vb7Nm9Lk1Jh3Gf5Ds7Ap9Qw1Er3Ty5Ui7O', secret: 'gho_3Xc5Vb7Nm9Lk1Jh3Gf5Ds7Ap9Qw1Er3Ty5Ui7O', kind: 'token' },
  { name: 'GitHub app token', text: 'ghs_5Tg7Yh9Uj1Ik3Ol5Pz7Xa9Sc1Dv3Fb5Gn7Hm9J', secret: 'ghs_5Tg7Yh9Uj1Ik3Ol5Pz7Xa9Sc1Dv3Fb5Gn7Hm9J', kind: 'token' },
  {
    name: 'GitHub fine-grained token',
    text: 'pat: 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',
    secret: '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',
    kind: 'token',
  },
  { name: 'GitLab token', text: 'CI uses glpat-x7Yq2Vb9Nc4Lm8Zt1Rw6 for pushes', secret: 'glpat-x7Yq2Vb9Nc4Lm8Zt1Rw6', kind: 'token' },
  { name: 'Slack bot token', text: 'slack xoxb-482910375628-5829103746251-Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4', secret: 'xoxb-482910375628-5829103746251-Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4', kind: 'token' },
  { name: 'Google API key', text: 'maps key AIzaSyD4x9Qm2Lv7Nc3Zt8Rw1Ys6Kd0Hf5Jg2Pa here', secret: 'AIzaSyD4x9Qm2Lv7Nc3Zt8Rw1Ys6Kd0Hf5Jg2Pa', kind: 'api_key' },
  {
    name: 'AWS access key id and secret',
    text: 'aws creds: AKIA4QX7ZL2M9VB3NC8T and then Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q',
    secret: 'Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q',
    kind: 'api_key',
  },
  {
    name: 'AWS env file',
    text: 'AWS_ACCESS_KEY_ID=AKIA4QX7ZL2M9VB3NC8T\nAWS_SECRET_ACCESS_KEY=Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q\n',
    secret: 'Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q',
    kind: 'api_key',
    keep: 'AWS_SECRET_ACCESS_KEY=',
  },
  {
    name: 'JWT',
    text: 'session eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MjQyIiwibmFtZSI6IkFkYSJ9.Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q6 expired?',
    secret: 'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiI0MjQyIiwibmFtZSI6IkFkYSJ9.Zq8Xw2Ec4Rv6Tb8Yn0Um2Il4Ok6Pj8Hg0Fd2Sa4Q6',
    kind: 'token',
  },
  { name: 'Authorization header', text: 'curl -H "Authorization: Bearer 9f8e7d6c5b4a3f2e1d0c" https://api.lan', secret: '9f8e7d6c5b4a3f2e1d0c', kind: 'token', keep: 'Authorization: Bearer ' },
  { name: 'bearer in prose', text: 'the api wants bearer Zt8Rw1Ys6Kd0Hf5Jg2Pa7E as auth', secret: 'Zt8Rw1Ys6Kd0Hf5Jg2Pa7E', kind: 'token' },
  { name: 'password assignment', text: 'login with password=Hunter2Secret! today', secret: 'Hunter2Secret!', kind: 'password', keep: 'password=' },
  { name: 'passwd colon', text: 'db:\n  passwd: correct-horse-battery-7', secret: 'correct-horse-battery-7', kind: 'password', keep: 'passwd: ' },
  { name: 'secret assignment', text: 'SECRET=q9W8e7R6t5Y4', secret: 'q9W8e7R6t5Y4', kind: 'password', keep: 'SECRET=' },
  { name: 'api_key JSON', text: '{"api_key": "k3y-Va1ue-0f-m1ne", "model": "x"}', secret: 'k3y-Va1ue-0f-m1ne', kind: 'api_key', keep: '"api_key": "' },
  { name: 'token env', text: 'export TOKEN=abc123def456', secret: 'abc123def456', kind: 'token', keep: 'TOKEN=' },
  { name: 'token after other words', text: 'audit me: token=abc123def456', secret: 'abc123def456', kind: 'token', keep: 'token=' },
  { name: 'prefixed env password', text: 'DB_PASSWORD=s3cret-Value9', secret: 's3cret-Value9', kind: 'password', keep: 'DB_PASSWORD=' },
  { name: 'YAML api key', text: 'openai:\n  api-key: "ak-7Hq2Lm9Vb4Nc8Zt1"', secret: 'ak-7Hq2Lm9Vb4Nc8Zt1', kind: 'api_key', keep: 'api-key: "' },
  { name: 'URL password', text: 'connect to https://deploy:S3cr3t-Pass@git.example.com/repo.git', secret: 'S3cr3t-Pass', kind: 'password', keep: 'https://deploy:' },
  { name: 'database URL password', text: 'DATABASE_URL=postgres://app:pw-9Xq2Lm7@db.lan:5432/app', secret: 'pw-9Xq2Lm7', kind: 'password', keep: 'postgres://app:' },
  {
    name: 'PEM private key',
    text:
      'here:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAq7Zt8Rw1Ys6Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx\n' +
      'Cv4Bn9Mm1Qa2Ws4Ed6Rf8Tg0Yh2Uj4Ik6Ol8Pz0Xa2Sc4Dv6Fb8Gn0Hm2Jq4Lw6Ne8\n-----END RSA PRIVATE KEY-----\nthanks',
    secret: 'MIIEowIBAAKCAQEAq7Zt8Rw1Ys6Kd0Hf5Jg2Pa7Eo4Iu9Ty1Re6Wq3Ds8Fg0Hj5Kl2Zx',
    kind: 'private_key',
  },
  {
    name: 'PEM private key without END',
    text: '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n',
    secret: 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW',
    kind: 'private_key',
  },
];

const LOOK_ALIKES = [
  "const skill = 'sk-ill';",
  'Commit 3f9c2a7b8e1d4c6f0a5b9e2d7c4f1a8b3e6d9c0f fixed it',
  'request 0b7e3c1a-4f2d-4e8b-9a6c-1d5f7e9b2c4a failed',
  'Send the password reset instructions to the user.',
  'Your password must be at least 8 characters.',
  'The token expires after 15 minutes; refresh it.',
  'img: PGltZyBzcmM9ImNhdC5wbmciIGFsdD0iYSBjYXQiPg==',
  'Those eyJungle birds are loud.',
  'See https://example.com/docs?page=2 and https://user@example.com/x',
  'const password = process.env.DB_PASSWORD;',
  'if (token == null) return;',
  'const token = getToken();',
  'def check(password: str) -> bool:',
  'He was the bearer of bad news, a responsibilities holder.',
  'sk-learn is not a thing, scikit-learn is; use sklearn.',
  'password: ${DB_PASSWORD}',
  'Use `ghp_` prefixes for classic tokens and `glpat-` for GitLab.',
  'AKIA prefixes mark access key ids.',
  'function login(token: string, password: String) {}',
  'Boarding pass: gate 5, bypass: none, compass: north',
  'tokens: 512, passwords: many',
  'export function authorize(header: string) { return header.startsWith("Bearer "); }',
];

describe('redact', () => {
  it.each(SECRET_SAMPLES)('redacts a $name', async ({ text, secret, kind, keep }) => {
    const r = await redact(text);
    expect(r.text).not.toContain(secret);
    // No part of the secret survives either.
    expect(r.text).not.toContain(secret.slice(-12));
    expect(r.text).toContain(REDACTION_MARKER);
    expect(r.kinds).toContain(kind);
    expect(r.count).toBeGreaterThanOrEqual(1);
    if (keep) expect(r.text).toContain(keep + REDACTION_MARKER);
  });

  it('redacts the AWS key id as well as the secret next to it', async () => {
    const r = await redact('AWS_ACCESS_KEY_ID=AKIA4QX7ZL2M9VB3NC8T');
    expect(r.text).toBe(`AWS_ACCESS_KEY_ID=${REDACTION_MARKER}`);
  });

  it('keeps the text around a secret exactly', async () => {
    const r = await redact('before ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo after');
    expect(r).toEqual({ text: `before ${REDACTION_MARKER} after`, kinds: ['token'], count: 1 });
  });

  it.each(LOOK_ALIKES)('leaves ordinary prose and code alone: %s', async (text) => {
    const r = await redact(text);
    expect(r).toEqual({ text, kinds: [], count: 0 });
  });

  it('redacts several messages and sums what it found', async () => {
    const r = await redactAll(['hello', 'password=Hunter2Secret!', 'key sk-4fT9aQ2LmZ8xWc7Rb3YhN1pK6sVd0EgJuT3BlbkFJ']);
    expect(r.texts[0]).toBe('hello');
    expect(r.kinds).toEqual(['api_key', 'password']);
    expect(r.count).toBe(2);
  });

  it('redacts a conversation sent again with one more message exactly as the first time', async () => {
    const history = ['my key is sk-4fT9aQ2LmZ8xWc7Rb3YhN1pK6sVd0EgJuT3BlbkFJ, keep it safe', 'Noted.', 'hello'];
    const first = await redactAll(history);
    const again = await redactAll([...history, 'and my password=Hunter2Secret!']);
    expect(again.texts).toEqual([...first.texts, 'and my password=SECRET_REDACTED']);
    expect(again.texts[0]).toBe('my key is SECRET_REDACTED, keep it safe');
    expect([first.kinds, first.count, again.kinds, again.count]).toEqual([['api_key'], 1, ['api_key', 'password'], 2]);
  });

  it('handles the empty string', async () => {
    expect(await redact('')).toEqual({ text: '', kinds: [], count: 0 });
  });
});

describe('redactAll', () => {
  it('finds a secret split over several texts, as a private key printed line by line', async () => {
    const lines = ['-----BEGIN OPENSSH PRIVATE KEY-----', 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW', 'QyNTUxOQAAACBmZ2hpamtsbW5vcHFyc3R1dnd4eXo0MTIzNDU2Nzg5MGFiY2RlZg', '-----END OPENSSH PRIVATE KEY-----', 'done'];
    const r = await redactAll(lines, { remember: false });
    expect(r.texts.slice(1, 3)).toEqual([REDACTION_MARKER, REDACTION_MARKER]);
    expect(r.texts.at(-1)).toBe('done');
    expect(r.kinds).toEqual(['private_key']);
  });

  it('gives each text of a batch the same redaction as alone', async () => {
    const texts = ['password=Hunter2Secret! and more', 'nothing here', `key ${'sk-4fT9aQ2LmZ8xWc7Rb3YhN1pK6sVd0EgJuT3BlbkFJ'} ok`, ''];
    const batch = await redactAll(texts, { remember: false });
    const alone = await Promise.all(texts.map((t) => redact(t)));
    expect(batch.texts).toEqual(alone.map((a) => a.text));
    expect(batch.count).toBe(2);
  });
});

describe('redactJson', () => {
  it('redacts the strings of a JSON value and replaces whole the values of credential-named keys', async () => {
    const r = await redactJson({
      note: 'deploy with ghp_8Zk2Lq9Xw4Vb7Nc1Rt5Ym3Hs6Jd0Fg2Pa4Eo please',
      smtp: { host: 'mail.lan', user: 'alerts', pass: 'correct horse' },
      dbPassword: 'hunter2',
      apiKey: 'Bearer abc',
      max_tokens: 512,
      token_count: '1200',
      tags: ['a', 'b'],
      empty_token: '',
      enabled: true,
    });
    expect(r.value).toEqual({
      note: `deploy with ${REDACTION_MARKER} please`,
      smtp: { host: 'mail.lan', user: 'alerts', pass: REDACTION_MARKER },
      dbPassword: REDACTION_MARKER,
      apiKey: REDACTION_MARKER,
      max_tokens: 512,
      token_count: '1200',
      tags: ['a', 'b'],
      empty_token: '',
      enabled: true,
    });
    expect(r.kinds).toEqual(['api_key', 'password', 'token']);
    expect(r.count).toBe(4);
  });
});
