/*
 * A corpus of credentials in their providers' documented formats, each with a random body of the
 * documented shape, in the places people paste them (env files, code, config, shell, prose), and
 * of look-alikes that are not secrets. Redaction is measured on it (tests/unit/redaction-corpus.test.ts).
 *
 * A credential without a self-identifying prefix (a Twilio auth token is 32 hex digits, like an
 * MD5 hash) can only be told from other random text by what stands next to it, so such kinds are
 * written next to their usual label; prefixed kinds also appear bare in a sentence.
 */

/** Deterministic random numbers (mulberry32): the same corpus on every run for one seed. */
export function randomSource(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
const HEX = '0123456789abcdef';
const B64 = ALNUM + '+/';
const B64URL = ALNUM + '-_';

export type Category = 'code host' | 'cloud' | 'AI API' | 'chat bot' | 'mail and SMS' | 'payment' | 'package registry' | 'token' | 'private key' | 'connection string' | 'password';

export interface SecretSample {
  kind: string;
  category: Category;
  text: string;
  /** Every value that must not survive, in full or in part. */
  secrets: string[];
}

interface Kind {
  kind: string;
  category: Category;
  /** One credential: the secret values and the text they sit in. */
  make: (g: Gen) => { secrets: string[]; contexts: string[] };
}

class Gen {
  constructor(private readonly rnd: () => number) {}
  of(alphabet: string, n: number): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[Math.floor(this.rnd() * alphabet.length)];
    return s;
  }
  alnum = (n: number) => this.of(ALNUM, n);
  hex = (n: number) => this.of(HEX, n);
  upper = (n: number) => this.of('ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789', n);
  lower = (n: number) => this.of('abcdefghijklmnopqrstuvwxyz0123456789', n);
  letters = (n: number) => this.of('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz', n);
  digits = (n: number) => this.of('0123456789', n);
  b64 = (n: number) => this.of(B64, n);
  b64url = (n: number) => this.of(B64URL, n);
  int = (lo: number, hi: number) => lo + Math.floor(this.rnd() * (hi - lo + 1));
  pick = <T>(xs: readonly T[]): T => xs[Math.floor(this.rnd() * xs.length)]!;
  /** A password a person chose: words, digits and a symbol. */
  password(): string {
    const words = ['Maple', 'river', 'Orbit', 'tango', 'Quartz', 'harbor', 'Velvet', 'cobalt', 'Summit', 'lantern'];
    return `${this.pick(words)}${this.pick(['-', '_', '.', '!', '#', '@'])}${this.pick(words)}${this.digits(this.int(2, 4))}${this.pick(['!', '?', '$', '%', '&', ''])}`;
  }
  /** A base64url JSON object (a JWT part) holding `fields`. */
  jsonPart(fields: Record<string, unknown>): string {
    return Buffer.from(JSON.stringify(fields)).toString('base64url');
  }
  uuid(): string {
    return `${this.hex(8)}-${this.hex(4)}-4${this.hex(3)}-${this.pick(['8', '9', 'a', 'b'])}${this.hex(3)}-${this.hex(12)}`;
  }
}

/** The usual places for a credential with a self-identifying prefix. */
const prefixed = (env: string, value: string, provider: string): string[] => [
  `${env}=${value}`,
  `Here is my ${provider} key: ${value} - why do I get a 401?`,
  `client = Client(api_key="${value}")`,
  `{"${env.toLowerCase()}": "${value}", "retries": 3}`,
  `export ${env}='${value}'`,
  `can you check this: ${value}`,
  `I accidentally pushed ${value} to the repo, what now?`,
];

/** The usual places for a credential that is only recognisable by its label. */
const labelled = (env: string, value: string, provider: string): string[] => [
  `${env}=${value}`,
  `export ${env}="${value}"`,
  `${env.toLowerCase()}: ${value}`,
  `{"${env.toLowerCase()}": "${value}"}`,
  `my ${provider} ${word(env)}: ${value}`,
  `the ${provider} ${word(env)} is ${value}`,
];

const word = (env: string) => (/secret/i.test(env) ? 'secret' : /token/i.test(env) ? 'token' : 'key');

function pem(g: Gen, label: string, lines: number): { body: string; text: string } {
  const rows = Array.from({ length: lines }, () => g.b64(64));
  rows.push(g.b64(g.int(20, 60)) + '==');
  const body = rows.join('\n');
  return { body, text: `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----` };
}

export const KINDS: Kind[] = [
  // Code hosts
  { kind: 'GitHub classic token', category: 'code host', make: (g) => { const v = `ghp_${g.alnum(36)}`; return { secrets: [v], contexts: [...prefixed('GITHUB_TOKEN', v, 'GitHub'), `git clone https://${v}@github.com/acme/app.git`] }; } },
  { kind: 'GitHub OAuth and app tokens', category: 'code host', make: (g) => { const v = `${g.pick(['gho', 'ghu', 'ghs', 'ghr'])}_${g.alnum(36)}`; return { secrets: [v], contexts: prefixed('GH_TOKEN', v, 'GitHub app') }; } },
  { kind: 'GitHub fine-grained token', category: 'code host', make: (g) => { const v = `github_pat_${g.alnum(22)}_${g.alnum(59)}`; return { secrets: [v], contexts: [...prefixed('GITHUB_PAT', v, 'GitHub'), `curl -H "Authorization: token ${v}" https://api.github.com/user`] }; } },
  { kind: 'GitLab token', category: 'code host', make: (g) => { const v = `${g.pick(['glpat', 'glrt', 'gldt'])}-${g.b64url(20).replace(/^[-_]/, 'x')}`; return { secrets: [v], contexts: prefixed('GITLAB_TOKEN', v, 'GitLab') }; } },
  { kind: 'Atlassian (Bitbucket, Jira) API token', category: 'code host', make: (g) => { const v = `ATATT3xFfGF0${g.b64url(171)}=${g.hex(8).toUpperCase()}`; return { secrets: [v], contexts: prefixed('ATLASSIAN_API_TOKEN', v, 'Bitbucket') }; } },
  // Clouds and their storage keys
  {
    kind: 'AWS access key and secret',
    category: 'cloud',
    make: (g) => {
      const id = `AKIA${g.of('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)}`;
      const secret = g.b64(40);
      return {
        secrets: [id, secret],
        contexts: [
          `AWS_ACCESS_KEY_ID=${id}\nAWS_SECRET_ACCESS_KEY=${secret}`,
          `[default]\naws_access_key_id = ${id}\naws_secret_access_key = ${secret}`,
          `s3 = boto3.client("s3", aws_access_key_id="${id}", aws_secret_access_key="${secret}")`,
          `my keys are ${id} and ${secret}, region eu-west-1`,
        ],
      };
    },
  },
  { kind: 'Google Cloud API key', category: 'cloud', make: (g) => { const v = `AIza${g.b64url(35)}`; return { secrets: [v], contexts: [...prefixed('GOOGLE_API_KEY', v, 'Gemini'), `https://maps.googleapis.com/maps/api/geocode/json?address=Paris&key=${v}`] }; } },
  {
    kind: 'Google service account key',
    category: 'cloud',
    make: (g) => {
      const key = pem(g, 'PRIVATE KEY', 12);
      const escaped = key.text.replaceAll('\n', '\\n');
      return {
        secrets: [key.body.split('\n')[3]!, key.body.split('\n')[9]!],
        contexts: [`{\n  "type": "service_account",\n  "project_id": "acme-prod",\n  "private_key_id": "${g.hex(40)}",\n  "private_key": "${escaped}\\n",\n  "client_email": "ci@acme-prod.iam.gserviceaccount.com"\n}`],
      };
    },
  },
  {
    kind: 'Azure storage account key',
    category: 'cloud',
    make: (g) => {
      const v = `${g.b64(86)}==`;
      return {
        secrets: [v],
        contexts: [
          `DefaultEndpointsProtocol=https;AccountName=acmestore${g.digits(2)};AccountKey=${v};EndpointSuffix=core.windows.net`,
          `AZURE_STORAGE_KEY=${v}`,
          `az storage blob list --account-name acmestore --account-key ${v}`,
        ],
      };
    },
  },
  { kind: 'Azure AD client secret', category: 'cloud', make: (g) => { const v = `${g.alnum(3)}${g.digits(1)}Q~${g.of(ALNUM + '_~.-', 34)}`; return { secrets: [v], contexts: labelled('AZURE_CLIENT_SECRET', v, 'Azure app') }; } },
  { kind: 'DigitalOcean token', category: 'cloud', make: (g) => { const v = `${g.pick(['dop', 'doo'])}_v1_${g.hex(64)}`; return { secrets: [v], contexts: prefixed('DIGITALOCEAN_TOKEN', v, 'DigitalOcean') }; } },
  { kind: 'Alibaba Cloud access key', category: 'cloud', make: (g) => { const v = `LTAI${g.alnum(20)}`; return { secrets: [v], contexts: prefixed('ALIBABA_CLOUD_ACCESS_KEY_ID', v, 'Alibaba') }; } },
  { kind: 'Heroku API key', category: 'cloud', make: (g) => { const v = `HRKU-AA${g.b64url(58)}`; return { secrets: [v], contexts: prefixed('HEROKU_API_KEY', v, 'Heroku') }; } },
  { kind: 'Cloudflare API token', category: 'cloud', make: (g) => { const v = `${g.pick(['cfut', 'cfat', 'cfk'])}_${g.alnum(40)}${g.hex(8)}`; return { secrets: [v], contexts: prefixed('CLOUDFLARE_API_TOKEN', v, 'Cloudflare') }; } },
  // AI APIs
  {
    kind: 'OpenAI key',
    category: 'AI API',
    make: (g) => {
      const n = g.pick([58, 74]);
      const v = g.pick([`sk-proj-${g.b64url(n)}T3BlbkFJ${g.b64url(n)}`, `sk-svcacct-${g.b64url(n)}T3BlbkFJ${g.b64url(n)}`, `sk-${g.alnum(20)}T3BlbkFJ${g.alnum(20)}`]).replace(/-[-_]/, '-a');
      return { secrets: [v], contexts: [...prefixed('OPENAI_API_KEY', v, 'OpenAI'), `curl https://api.openai.com/v1/models -H "Authorization: Bearer ${v}"`] };
    },
  },
  { kind: 'Anthropic key', category: 'AI API', make: (g) => { const v = `sk-ant-api03-${g.b64url(93)}AA`; return { secrets: [v], contexts: [...prefixed('ANTHROPIC_API_KEY', v, 'Claude'), `curl https://api.anthropic.com/v1/messages -H "x-api-key: ${v}"`] }; } },
  { kind: 'Hugging Face token', category: 'AI API', make: (g) => { const v = `hf_${g.letters(34)}`; return { secrets: [v], contexts: [...prefixed('HF_TOKEN', v, 'Hugging Face'), `huggingface-cli login --token ${v}`] }; } },
  { kind: 'Groq key', category: 'AI API', make: (g) => { const v = `gsk_${g.alnum(52)}`; return { secrets: [v], contexts: prefixed('GROQ_API_KEY', v, 'Groq') }; } },
  { kind: 'Perplexity key', category: 'AI API', make: (g) => { const v = `pplx-${g.alnum(48)}`; return { secrets: [v], contexts: prefixed('PERPLEXITY_API_KEY', v, 'Perplexity') }; } },
  { kind: 'Cohere key', category: 'AI API', make: (g) => { const v = g.alnum(40); return { secrets: [v], contexts: labelled('COHERE_API_KEY', v, 'Cohere') }; } },
  // Chat and messaging bots
  {
    kind: 'Slack token',
    category: 'chat bot',
    make: (g) => {
      const v = g.pick([`xoxb-${g.digits(12)}-${g.digits(13)}-${g.alnum(24)}`, `xoxp-${g.digits(12)}-${g.digits(12)}-${g.digits(13)}-${g.hex(32)}`, `xapp-1-A${g.upper(10)}-${g.digits(13)}-${g.hex(64)}`]);
      return { secrets: [v], contexts: prefixed('SLACK_BOT_TOKEN', v, 'Slack') };
    },
  },
  { kind: 'Slack webhook', category: 'chat bot', make: (g) => { const path = `T${g.upper(10)}/B${g.upper(10)}/${g.alnum(24)}`; return { secrets: [path.split('/')[2]!], contexts: [`SLACK_WEBHOOK_URL=https://hooks.slack.com/services/${path}`, `curl -X POST -d '{"text":"deploy done"}' https://hooks.slack.com/services/${path}`] }; } },
  {
    kind: 'Discord bot token',
    category: 'chat bot',
    make: (g) => {
      const v = `${Buffer.from(g.digits(19).replace(/^0/, '1')).toString('base64').replace(/=+$/, '')}.${g.b64url(6)}.${g.b64url(38)}`;
      return { secrets: [v], contexts: labelled('DISCORD_BOT_TOKEN', v, 'Discord bot') };
    },
  },
  { kind: 'Telegram bot token', category: 'chat bot', make: (g) => { const v = `${g.digits(10).replace(/^0/, '7')}:AA${g.b64url(33)}`; return { secrets: [v], contexts: labelled('TELEGRAM_BOT_TOKEN', v, 'Telegram bot') }; } },
  {
    kind: 'Microsoft Teams webhook',
    category: 'chat bot',
    make: (g) => {
      const v = `https://acme.webhook.office.com/webhookb2/${g.uuid()}@${g.uuid()}/IncomingWebhook/${g.hex(32)}/${g.uuid()}`;
      return { secrets: [v.split('/')[6]!], contexts: [`TEAMS_WEBHOOK=${v}`, `post the alert to ${v}`] };
    },
  },
  // Mail and SMS
  { kind: 'SendGrid key', category: 'mail and SMS', make: (g) => { const v = `SG.${g.b64url(22)}.${g.b64url(43)}`; return { secrets: [v], contexts: prefixed('SENDGRID_API_KEY', v, 'SendGrid') }; } },
  { kind: 'Mailgun key', category: 'mail and SMS', make: (g) => { const v = `key-${g.hex(32)}`; return { secrets: [v], contexts: labelled('MAILGUN_API_KEY', v, 'Mailgun') }; } },
  { kind: 'Mailchimp key', category: 'mail and SMS', make: (g) => { const v = `${g.hex(32)}-us${g.int(10, 21)}`; return { secrets: [v], contexts: labelled('MAILCHIMP_API_KEY', v, 'Mailchimp') }; } },
  { kind: 'Brevo (Sendinblue) key', category: 'mail and SMS', make: (g) => { const v = `xkeysib-${g.hex(64)}-${g.alnum(16)}`; return { secrets: [v], contexts: prefixed('BREVO_API_KEY', v, 'Brevo') }; } },
  { kind: 'Twilio API key', category: 'mail and SMS', make: (g) => { const v = `SK${g.hex(32)}`; return { secrets: [v], contexts: prefixed('TWILIO_API_KEY', v, 'Twilio') }; } },
  { kind: 'Twilio auth token', category: 'mail and SMS', make: (g) => { const v = g.hex(32); return { secrets: [v], contexts: labelled('TWILIO_AUTH_TOKEN', v, 'Twilio auth') }; } },
  // Payment
  { kind: 'Stripe key', category: 'payment', make: (g) => { const v = `${g.pick(['sk_live', 'rk_live', 'sk_test'])}_${g.alnum(g.pick([24, 99]))}`; return { secrets: [v], contexts: [...prefixed('STRIPE_SECRET_KEY', v, 'Stripe'), `curl https://api.stripe.com/v1/charges -u ${v}:`] }; } },
  { kind: 'Square token', category: 'payment', make: (g) => { const v = g.pick([`EAAA${g.b64url(60)}`, `sq0atp-${g.b64url(22)}`]); return { secrets: [v], contexts: prefixed('SQUARE_ACCESS_TOKEN', v, 'Square') }; } },
  { kind: 'Shopify token', category: 'payment', make: (g) => { const v = `${g.pick(['shpat', 'shpss', 'shpca', 'shppa'])}_${g.hex(32)}`; return { secrets: [v], contexts: prefixed('SHOPIFY_ACCESS_TOKEN', v, 'Shopify') }; } },
  // Package registries
  { kind: 'npm token', category: 'package registry', make: (g) => { const v = `npm_${g.alnum(36)}`; return { secrets: [v], contexts: [...prefixed('NPM_TOKEN', v, 'npm'), `//registry.npmjs.org/:_authToken=${v}`] }; } },
  { kind: 'PyPI token', category: 'package registry', make: (g) => { const v = `pypi-AgEIcHlwaS5vcmc${g.b64url(g.int(60, 160))}`; return { secrets: [v], contexts: [...prefixed('TWINE_PASSWORD', v, 'PyPI'), `[pypi]\n  username = __token__\n  password = ${v}`] }; } },
  { kind: 'RubyGems key', category: 'package registry', make: (g) => { const v = `rubygems_${g.hex(48)}`; return { secrets: [v], contexts: prefixed('GEM_HOST_API_KEY', v, 'RubyGems') }; } },
  { kind: 'Docker Hub token', category: 'package registry', make: (g) => { const v = `dckr_pat_${g.b64url(27)}`; return { secrets: [v], contexts: [...prefixed('DOCKERHUB_TOKEN', v, 'Docker Hub'), `echo ${v} | docker login -u acme --password-stdin`] }; } },
  { kind: 'Clojars token', category: 'package registry', make: (g) => { const v = `CLOJARS_${g.lower(60)}`; return { secrets: [v], contexts: prefixed('CLOJARS_TOKEN', v, 'Clojars') }; } },
  // Tokens
  {
    kind: 'JWT',
    category: 'token',
    make: (g) => {
      const v = `${g.jsonPart({ alg: g.pick(['HS256', 'RS256', 'ES256']), typ: 'JWT' })}.${g.jsonPart({ sub: g.digits(8), name: 'Ada', iat: 1700000000 + g.int(0, 9999999) })}.${g.b64url(43)}`;
      return { secrets: [v], contexts: [`Authorization: Bearer ${v}`, `my session token is ${v}, it expired?`, `localStorage.setItem("jwt", "${v}")`, `curl -H 'Authorization: Bearer ${v}' https://api.acme.test/me`] };
    },
  },
  { kind: 'Bearer token', category: 'token', make: (g) => { const v = g.b64url(g.int(32, 64)); return { secrets: [v], contexts: [`curl -H "Authorization: Bearer ${v}" https://api.acme.test/v1/items`, `headers = {"Authorization": "Bearer ${v}"}`, `Authorization: Bearer ${v}`] }; } },
  { kind: 'HashiCorp Vault token', category: 'token', make: (g) => { const v = `hvs.${g.b64url(g.int(90, 110))}`; return { secrets: [v], contexts: prefixed('VAULT_TOKEN', v, 'Vault') }; } },
  { kind: 'Linear key', category: 'token', make: (g) => { const v = `lin_api_${g.alnum(40)}`; return { secrets: [v], contexts: prefixed('LINEAR_API_KEY', v, 'Linear') }; } },
  { kind: 'Notion token', category: 'token', make: (g) => { const v = `ntn_${g.digits(11)}${g.alnum(35)}`; return { secrets: [v], contexts: prefixed('NOTION_TOKEN', v, 'Notion') }; } },
  { kind: 'Grafana service account token', category: 'token', make: (g) => { const v = `glsa_${g.alnum(32)}_${g.hex(8)}`; return { secrets: [v], contexts: prefixed('GRAFANA_TOKEN', v, 'Grafana') }; } },
  { kind: 'Databricks token', category: 'token', make: (g) => { const v = `dapi${g.hex(32)}`; return { secrets: [v], contexts: prefixed('DATABRICKS_TOKEN', v, 'Databricks') }; } },
  { kind: 'Postman key', category: 'token', make: (g) => { const v = `PMAK-${g.hex(24)}-${g.hex(34)}`; return { secrets: [v], contexts: prefixed('POSTMAN_API_KEY', v, 'Postman') }; } },
  { kind: 'Doppler token', category: 'token', make: (g) => { const v = `dp.pt.${g.alnum(43)}`; return { secrets: [v], contexts: prefixed('DOPPLER_TOKEN', v, 'Doppler') }; } },
  { kind: 'Sentry token', category: 'token', make: (g) => { const v = `sntryu_${g.hex(64)}`; return { secrets: [v], contexts: prefixed('SENTRY_AUTH_TOKEN', v, 'Sentry') }; } },
  { kind: 'Tailscale key', category: 'token', make: (g) => { const v = `tskey-${g.pick(['auth', 'api', 'client'])}-k${g.alnum(11)}CNTRL-${g.alnum(32)}`; return { secrets: [v], contexts: prefixed('TS_AUTHKEY', v, 'Tailscale') }; } },
  // Private keys
  {
    kind: 'PEM private key',
    category: 'private key',
    make: (g) => {
      const label = g.pick(['RSA PRIVATE KEY', 'PRIVATE KEY', 'EC PRIVATE KEY', 'OPENSSH PRIVATE KEY', 'ENCRYPTED PRIVATE KEY', 'DSA PRIVATE KEY']);
      const key = pem(g, label, g.int(4, 25));
      const rows = key.body.split('\n');
      return { secrets: [rows[0]!, rows[rows.length - 2]!], contexts: [key.text, `here is the deploy key:\n${key.text}\nthanks`, `ssh_key: |\n  ${key.text.replaceAll('\n', '\n  ')}`] };
    },
  },
  {
    kind: 'PGP private key',
    category: 'private key',
    make: (g) => {
      const key = pem(g, 'PGP PRIVATE KEY BLOCK', g.int(8, 20));
      const rows = key.body.split('\n');
      return { secrets: [rows[0]!, rows[rows.length - 2]!], contexts: [key.text.replace('-----\n', '-----\n\n')] };
    },
  },
  { kind: 'age secret key', category: 'private key', make: (g) => { const v = `AGE-SECRET-KEY-1${g.of('QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L', 58)}`; return { secrets: [v], contexts: [`# created: 2024-05-01\n# public key: age1${g.of('qpzry9x8gf2tvdw0s3jn54khce6mua7l', 58)}\n${v}`, `SOPS_AGE_KEY=${v}`] }; } },
  // Connection strings
  {
    kind: 'database URL',
    category: 'connection string',
    make: (g) => {
      const pw = g.pick([g.alnum(g.int(12, 24)), g.password().replace(/[@#?/%]/g, '-')]);
      const url = g.pick([
        `postgres://app:${pw}@db.internal:5432/orders`,
        `postgresql://admin:${pw}@10.0.3.12/app?sslmode=require`,
        `mysql://root:${pw}@localhost:3306/shop`,
        `mongodb+srv://svc:${pw}@cluster0.ab1cd.mongodb.net/prod?retryWrites=true`,
        `redis://default:${pw}@cache.internal:6379/0`,
        `amqp://worker:${pw}@rabbit.internal:5672/jobs`,
      ]);
      return { secrets: [pw], contexts: [`DATABASE_URL=${url}`, `engine = create_engine("${url}")`, `connecting to ${url} times out`] };
    },
  },
  {
    kind: 'ADO.NET and JDBC connection string',
    category: 'connection string',
    make: (g) => {
      const pw = g.password();
      return {
        secrets: [pw],
        contexts: [
          `Server=tcp:acme.database.windows.net,1433;Initial Catalog=orders;User ID=sqladmin;Password=${pw};Encrypt=True;`,
          `jdbc:postgresql://db.internal:5432/app?user=app&password=${encodeURIComponent(pw)}`,
          `"ConnectionStrings": { "Default": "Host=db;Database=app;Username=app;Password=${pw}" }`,
        ],
      };
    },
  },
  // Passwords
  {
    kind: 'password assignment',
    category: 'password',
    make: (g) => {
      const pw = g.password();
      return {
        secrets: [pw],
        contexts: [
          `password=${pw}`,
          `DB_PASSWORD=${pw}`,
          `MYSQL_ROOT_PASSWORD: "${pw}"`,
          `{"username": "admin", "password": "${pw}"}`,
          `smtp:\n  host: mail.acme.test\n  user: alerts\n  password: ${pw}`,
          `conn = psycopg2.connect(host="db", user="app", password="${pw}")`,
          `the wifi passphrase: ${pw}`,
          `login with pwd=${pw} please`,
          `my password is ${pw}`,
          `DB_PASS=${pw}`,
          `mysql --user=root --password=${pw} shop`,
        ],
      };
    },
  },
];

/** Several samples of every kind: a new credential in each of its contexts in turn, at least `perKind`. */
export function secretSamples(seed = 20240611, perKind = 6): SecretSample[] {
  const g = new Gen(randomSource(seed));
  const out: SecretSample[] = [];
  for (const k of KINDS) {
    for (let i = 0, n = perKind; i < n; i++) {
      const { secrets, contexts } = k.make(g);
      n = Math.max(perKind, contexts.length);
      out.push({ kind: k.kind, category: k.category, text: contexts[i % contexts.length]!, secrets });
    }
  }
  return out;
}

/** Text that looks like a secret in one way or another but is not one: redaction must leave it as it is. */
export function lookAlikes(seed = 20240611): string[] {
  const g = new Gen(randomSource(seed ^ 0x5eed));
  const png = Buffer.from(Array.from({ length: 90 }, (_, i) => (i * 37 + g.int(0, 255)) & 255)).toString('base64');
  const fixed = [
    // Prose with the words
    'Send the password reset instructions to the user.',
    'Your password must be at least 12 characters and contain a digit.',
    'The token expires after 15 minutes; refresh it before then.',
    'Never commit your API key to the repository; use a secret manager.',
    'How do I rotate my AWS access keys without downtime?',
    'The bearer of this letter is a friend.',
    'Passwords are hashed with argon2id; tokens are stored as SHA-256 digests.',
    'I forgot my password again, can you explain how the reset flow works?',
    'What is the difference between an access token and a refresh token?',
    'Secret Santa: draw names on Friday, budget 20 euros.',
    'Key takeaways: ship small, test often, measure.',
    'Tokens: 512, passwords: many, keys: none.',
    'Please use a password manager; the password field accepts 128 characters.',
    'The API key header is called x-api-key and the value comes from the dashboard.',
    'The token is base64-encoded and signed with RS256.',
    'The primary key is user_id2 and the sort key is created_at.',
    'The API key is 40 characters long and the secret is HTTP/2 only.',
    'My password is too short, the form says.',
    'The key is sha256(password + salt), the token is v1.2.3-beta.',
    'Which key is ed25519 and which is rsa4096?',
    // Code identifiers
    'const token = await getAccessToken(scope);',
    'if (!apiKey) throw new Error("OPENAI_API_KEY is not set");',
    'password = os.environ["DB_PASSWORD"]',
    'api_key = settings.OPENAI_API_KEY',
    'def verify_password(plain_password: str, hashed_password: str) -> bool:',
    'const secretKey = process.env.SECRET_KEY ?? "";',
    'token_count = len(tokenizer.encode(prompt))',
    'max_tokens: 1024',
    '{"model": "gpt-4o", "max_tokens": 256, "temperature": 0.2}',
    'export function hashPassword(password: string): Promise<string> {',
    'AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY}',
    'password: ${DB_PASSWORD}',
    'GITHUB_TOKEN: ${{ secrets.GITHUB_TOKEN }}',
    'api_key: <your-api-key-here>',
    'password=********',
    'const isTokenExpired = (token: Token) => token.expiresAt < Date.now();',
    'class PasswordResetTokenGenerator(object):',
    'SELECT id, password_hash FROM users WHERE email = $1',
    'keyboard.addEventListener("keydown", onKey);',
    'for key, value in sorted(config.items()):',
    'ssh-keygen -t ed25519 -C "ada@example.com" -f ~/.ssh/id_ed25519',
    // URLs without credentials
    'See https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens',
    'https://platform.openai.com/api-keys is where keys live.',
    'git clone https://github.com/acme/app.git && cd app',
    'postgres://localhost:5432/app',
    'https://user@example.com/repo.git',
    'https://example.com/search?q=password+reset&page=2',
    'Open http://127.0.0.1:12080/console/#/tokens to see them.',
    'redis://cache.internal:6379/0',
    // Misc
    'Those eyJungle birds are loud.',
    'sk-learn is not a thing, scikit-learn is; use sklearn.',
    'Use the ghp_ prefix for classic tokens and glpat- for GitLab.',
    'AKIA prefixes mark AWS access key ids.',
    'node v20.19.0, npm 11.4.2, typescript 5.8.3',
    'The build finished at 2024-06-11T09:42:17.123Z in 93.4 s.',
    'color: #1e90ff; background: #0b0d12;',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl ada@laptop',
    '-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEVs/o5+uQbTjL3chynL4wXgUg2R9\nq9UU8I5mEovUf86QZ7kOBIjJwqnzD1omageEHWwHdBO6B+dFabmdT9POxg==\n-----END PUBLIC KEY-----',
    '"resolved": "https://registry.npmjs.org/ms/-/ms-2.1.3.tgz"',
    'Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor.',
    'Error: ECONNREFUSED 127.0.0.1:5432 at TCPConnectWrap.afterConnect',
    'fe80::1ff:fe23:4567:890a%eth0',
    'docker pull ghcr.io/acme/api:1.4.2',
    'The key to success is consistency.',
    'idempotency_key: order-2024-06-11-0001',
    'cache_key = f"user:{user_id}:profile"',
    'SESSION_COOKIE_NAME=acme_session',
    'const keyPair = await crypto.subtle.generateKey(params, true, ["sign"]);',
  ];
  const generated: string[] = [];
  for (let i = 0; i < 8; i++) generated.push(`request ${g.uuid()} failed with 502`);
  for (let i = 0; i < 4; i++) generated.push(`"id": "${g.uuid()}"`);
  for (let i = 0; i < 8; i++) generated.push(`Reverted commit ${g.hex(40)} because it broke the build`);
  for (let i = 0; i < 4; i++) generated.push(`git cherry-pick ${g.hex(7)} ${g.hex(12)}`);
  for (let i = 0; i < 5; i++) generated.push(`sha256sum: ${g.hex(64)}  cynode-0.1.0.tar.gz`);
  for (let i = 0; i < 3; i++) generated.push(`image: postgres@sha256:${g.hex(64)}`);
  for (let i = 0; i < 4; i++) generated.push(`md5 ${g.hex(32)}`);
  for (let i = 0; i < 3; i++) generated.push(`"integrity": "sha512-${g.b64(86)}=="`);
  for (let i = 0; i < 4; i++) generated.push(`<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA${png}${g.b64(40)}=" alt="chart">`);
  for (let i = 0; i < 3; i++) generated.push(`![diagram](data:image/jpeg;base64,/9j/4AAQSkZJRgABAQAAAQABAAD${g.b64(120)})`);
  for (let i = 0; i < 3; i++) generated.push(`const userId = "${g.uuid()}"; // the user whose token we refresh`);
  return [...fixed, ...generated];
}
