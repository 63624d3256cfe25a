import { Type } from '@sinclair/typebox';
import { driverOf, NO_RETRY, type OperationSpec } from './contract';
import { callJsonApi, record, segment, text, type JsonApi } from './web-api';

/**
 * One GitHub repository through the REST API, with a fine-grained or classic token as bearer.
 * The instance is bound to one repository, so a policy on the instance is a policy on it.
 */

const api: JsonApi = {
  service: 'GitHub',
  defaultBaseUrl: 'https://api.github.com',
  headers: { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' },
};

const Name = Type.String({ pattern: '^[A-Za-z0-9._-]{1,100}$' });

const GitHubConfig = Type.Object(
  {
    base_url: Type.Optional(Type.String({ pattern: '^https?://', maxLength: 2048, default: api.defaultBaseUrl })),
    owner: Name,
    repo: Name,
  },
  { additionalProperties: false },
);

const createIssue: OperationSpec = {
  name: 'create_issue',
  title: 'Create an issue',
  description: 'Opens an issue in the repository.',
  requestSchema: Type.Object(
    {
      title: Type.String({ minLength: 1, maxLength: 256 }),
      body: Type.Optional(Type.String({ maxLength: 65536 })),
      labels: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 50 }), { maxItems: 20 })),
    },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ number: Type.Integer(), url: Type.String() }),
  execution: 'sync',
  timeoutMs: 20_000,
  idempotent: false,
  retry: NO_RETRY,
};

const postMessage: OperationSpec = {
  name: 'post_message',
  title: 'Comment on an issue',
  description: 'Posts a comment on an issue or pull request of the repository.',
  requestSchema: Type.Object(
    { issue_number: Type.Integer({ minimum: 1 }), text: Type.String({ minLength: 1, maxLength: 65536 }) },
    { additionalProperties: false },
  ),
  resultSchema: Type.Object({ id: Type.Integer(), url: Type.String() }),
  execution: 'sync',
  timeoutMs: 20_000,
  idempotent: false,
  retry: NO_RETRY,
};

function repoPath(config: Record<string, unknown>): string {
  return `/repos/${segment(config.owner, 'owner')}/${segment(config.repo, 'repo')}`;
}

export const githubDriver = driverOf(
  {
    type: 'github',
    title: 'GitHub repository',
    description: 'Open issues and comment in one GitHub repository.',
    configSchema: GitHubConfig,
    credentialTypes: ['bearer_token'],
    credentialRequired: true,
    operations: [postMessage, createIssue],
  },
  {
    async create_issue(ctx, p) {
      const body: Record<string, unknown> = { title: p.title };
      if (p.body !== undefined) body.body = p.body;
      if (p.labels !== undefined) body.labels = p.labels;
      const issue = record(
        await callJsonApi(api, ctx, { method: 'POST', path: `${repoPath(ctx.config)}/issues`, body, timeoutMs: ctx.operation.timeoutMs }),
      );
      return { number: Number(issue.number), url: text(issue.html_url) };
    },
    async post_message(ctx, p) {
      const comment = record(
        await callJsonApi(api, ctx, {
          method: 'POST',
          path: `${repoPath(ctx.config)}/issues/${Number(p.issue_number)}/comments`,
          body: { body: p.text },
          timeoutMs: ctx.operation.timeoutMs,
        }),
      );
      return { id: Number(comment.id), url: text(comment.html_url) };
    },
  },
  async (ctx) => {
    await callJsonApi(api, ctx, { method: 'GET', path: repoPath(ctx.config), timeoutMs: 10_000 });
  },
);
