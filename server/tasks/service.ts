import type { Db } from '../db';
import { appendAudit } from '../audit/record';
import type { Principal, RequestContext } from '../http/principal';
import { shellQuote } from '../lib/shell';
import { HttpProblem, badRequest, conflict, notFound } from '../http/problem';
import type { Authorizer } from '../rbac/service';
import { findDefaultProject } from '../projects/default-project';
import type { ProjectRow } from '../projects/store';
import { insertRun } from '../runs/record';
import { redactAll } from '../redaction/redaction';
import { findOwnSession } from '../sessions/queries';
import { findVisibleTask, isUuid } from './queries';
import {
  cancelQueuedJobs,
  insertJob,
  insertTaskNamed,
  listTaskJobs,
  listVisibleTasks,
  lockTask,
  markTaskCanceled,
  namesLike,
  type InputMode,
  type JobKind,
  type TaskFilter,
  type TaskJobRow,
  type TaskRow,
} from './store';

const modelNotFound = (detail: string) => new HttpProblem(404, detail, { code: 'model_not_found' });

/** The channel the dispatcher listens on; the payload is the task id (informational only). */
export const JOBS_CHANNEL = 'cynode_jobs';

export const MAX_PROMPT_BYTES = 1024 * 1024;
export const MAX_TASK_NAME = 60;

/** What the task service needs from the dispatcher. */
export interface JobControl {
  /**
   * Ask the nodes running these jobs to stop them. Best effort and asynchronous: the dispatcher
   * keeps asking while its call for the job is open, and a job whose node never answers ends when
   * its lease does.
   */
  stopJobs(jobs: ReadonlyArray<{ id: string; taskId: string; nodeId: string | null }>): void;
}

/** Which models a user may use (`model.use`, decided and audited by the policy engine), as chat asks it. */
export interface ModelAccess {
  /** What nodes serving inference have (`served`) and, of those, what the user may use: `GET /v1/models`. */
  modelsServed(principal: Principal, ctx: RequestContext): Promise<{ usable: string[]; served: string[] }>;
  mayUse(principal: Principal, model: string, ctx: RequestContext): Promise<boolean>;
}

export interface TaskDefaults {
  taskTimeoutSeconds: number;
  sandboxImage: string;
}

export interface CreateTaskInput {
  prompt: string;
  input_mode?: InputMode;
  task_name?: string;
  project_id?: string;
  timeout_seconds?: number;
  image?: string;
  /** Prompt tasks: the model to answer with; else the first model of the node chosen. */
  model?: string;
  /** One of the caller's sessions; the task's runs belong to it. */
  session_id?: string;
  /** Script and commands tasks: the sandbox reaches its node's model through the inference proxy. */
  use_inference?: boolean;
}

/**
 * Tasks: a user's unit of work. Creating one queues its job(s) in the same transaction and wakes
 * the dispatcher; reading is for the creator and whoever may read tasks in the project; canceling
 * for the creator and holders of `task.cancel` there.
 */
export class TaskService {
  constructor(
    private readonly db: Db,
    private readonly authz: Authorizer,
    private readonly defaults: TaskDefaults,
    private readonly jobs: JobControl,
    /** Without it (tests of tasks alone) prompt tasks take any model, as before the policy engine. */
    private readonly models?: ModelAccess,
  ) {}

  async create(principal: Principal, input: CreateTaskInput, ctx: RequestContext): Promise<TaskRow> {
    if (input.prompt.trim() === '') throw badRequest('prompt is required: the text, script or commands of the task');
    if (Buffer.byteLength(input.prompt, 'utf8') > MAX_PROMPT_BYTES) throw new HttpProblem(413, `prompt is larger than ${MAX_PROMPT_BYTES} bytes (1 MiB)`);
    const mode = input.input_mode ?? 'prompt';
    // A prompt goes to a model like a chat message and is stored redacted like one. A script or
    // commands would not run redacted: only the name, taken from their first words, is.
    const [text, taskName] = (await redactAll([mode === 'prompt' ? input.prompt : input.prompt.slice(0, 400), input.task_name ?? ''])).texts as [string, string];
    const prompt = mode === 'prompt' ? text : input.prompt;
    const job = jobFor(mode, prompt, {
      timeoutSeconds: input.timeout_seconds ?? this.defaults.taskTimeoutSeconds,
      image: input.image ?? this.defaults.sandboxImage,
      model: mode === 'prompt' ? await this.modelFor(principal, input.model, ctx) : input.model,
      useInference: input.use_inference === true,
    });
    const project = await this.projectFor(principal, input.project_id, ctx);
    if (input.session_id !== undefined && !(await findOwnSession(this.db, principal.userId, input.session_id))) throw notFound('Session');
    const base = taskNameBase(input.task_name === undefined ? undefined : taskName, text);

    const task = await this.db.transaction(async (tx) => {
      // The unique index (created_by, name) decides between concurrent creates: a name taken in
      // the meantime makes the insert return nothing, and the next suffix is tried.
      for (let tries = 0; tries < 20; tries++) {
        const name = nextFreeName(base, await namesLike(tx, principal.userId, base));
        const t = await insertTaskNamed(tx, { name, createdBy: principal.userId, projectId: project.id, inputMode: mode, prompt, metadata: null, sessionId: input.session_id });
        if (!t) continue;
        const jobId = await insertJob(tx, { taskId: t.id, kind: job.kind, payload: job.payload });
        // The job's run exists from the start, so its stream can be opened before it runs.
        await insertRun(tx, { taskId: t.id, jobId, sessionId: t.session_id, createdBy: principal.userId });
        return t;
      }
      throw conflict('Could not find a free task name; retry, or give task_name');
    });
    // After the commit, so the dispatcher finds the job when it wakes. Its one-second poll
    // covers a lost notification.
    await this.db.notify(JOBS_CHANNEL, task.id).catch(() => {});
    return task;
  }

  /**
   * A prompt task answers with a model its creator may use, as a chat would. A model named but not
   * usable is refused like an unknown one; with none named, the task is pinned now to the first
   * usable model, so the node's default cannot be one the rules keep from them. While no node serves
   * a model yet, none is pinned and the task waits as before.
   */
  private async modelFor(principal: Principal, model: string | undefined, ctx: RequestContext): Promise<string | undefined> {
    if (!this.models) return model;
    if (model !== undefined) {
      // A model no node has yet may still arrive, and the task waits for it as before; one the rules keep from the user does not.
      if (!(await this.models.mayUse(principal, model, ctx))) throw modelNotFound(`The model "${model.slice(0, 200)}" does not exist or you do not have access to it; GET /v1/models lists the models you can use`);
      return model;
    }
    const { usable, served } = await this.models.modelsServed(principal, ctx);
    if (usable.length > 0) return usable[0];
    if (served.length > 0) throw modelNotFound('You may use none of the models the nodes serve; GET /v1/models lists the models you can use, and an admin can allow more');
    return undefined;
  }

  /** A task the user may read, by id or by their own task name; null otherwise (callers answer their own 404). */
  findVisible(userId: string, ref: string): Promise<TaskRow | null> {
    return findVisibleTask(this.db, userId, ref);
  }

  /** A task the caller may read, by id or by their own task name; 404 otherwise. */
  async get(principal: Principal, ref: string): Promise<TaskRow> {
    const task = await findVisibleTask(this.db, principal.userId, ref);
    if (!task) throw notFound('Task');
    return task;
  }

  async list(principal: Principal, f: Omit<TaskFilter, 'visibleTo' | 'projectId'> & { project?: string }, ctx: RequestContext): Promise<{ tasks: TaskRow[]; more: boolean }> {
    const projectId = f.project === undefined ? undefined : (await this.authz.requireProject(principal, f.project, 'project.read', ctx)).id;
    return listVisibleTasks(this.db, { visibleTo: principal.userId, status: f.status, afterId: f.afterId, limit: f.limit, projectId });
  }

  async withJobs(principal: Principal, ref: string): Promise<{ task: TaskRow; jobs: TaskJobRow[] }> {
    const task = await this.get(principal, ref);
    return { task, jobs: await listTaskJobs(this.db, task.id) };
  }

  /**
   * Queued or running → canceled. Idempotent for a canceled task; 409 for one that already ended
   * otherwise. Running jobs are stopped on their node after the commit.
   */
  async cancel(principal: Principal, ref: string, ctx: RequestContext): Promise<TaskRow> {
    const found = await this.get(principal, ref);
    const byCreator = found.created_by === principal.userId;
    if (!byCreator) await this.authz.require(principal, 'task.cancel', ctx, { projectId: found.project_id, resourceType: 'task', resourceId: found.id });

    const { task, running } = await this.db.transaction(async (tx) => {
      // Jobs before the task: the dispatcher locks in that order too (claim, result, node loss),
      // so the two never wait on each other in a circle.
      const running = await cancelQueuedJobs(tx, found.id);
      const t = (await lockTask(tx, found.id))!;
      if (t.status === 'canceled') return { task: t, running: [] };
      if (t.closed) throw conflict(`Task "${t.name}" has already ended (${t.status}); only queued or running tasks can be canceled`);
      await markTaskCanceled(tx, t.id);
      // The audit trail records changes made to other people's things; a user canceling their
      // own task is recorded by the task itself (status, ended_at), like creating it.
      if (!byCreator) {
        await appendAudit(
          tx,
          {
            category: 'admin',
            action: 'task_canceled',
            outcome: 'success',
            actorId: principal.userId,
            actorHandle: principal.handle,
            resourceType: 'task',
            resourceId: t.id,
            scopeType: 'project',
            scopeId: t.project_id,
            details: { task_name: t.name, created_by: t.created_by, previous_status: t.status },
          },
          ctx,
        );
      }
      return { task: { ...t, status: 'canceled' as const, closed: true }, running };
    });
    if (running.length > 0) this.jobs.stopJobs(running.map((j) => ({ id: j.id, taskId: task.id, nodeId: j.node_id })));
    return task;
  }

  /**
   * The project named by the caller (404 when they cannot see it, 403 when they may not create
   * tasks there), or their default project.
   */
  private async projectFor(principal: Principal, ref: string | undefined, ctx: RequestContext): Promise<ProjectRow> {
    let project: ProjectRow | null;
    if (ref !== undefined) {
      project = await this.authz.requireProject(principal, ref, 'task.create', ctx);
    } else {
      project = await findDefaultProject(this.db, principal.userId);
      if (!project) throw badRequest('You have no default project; give project_id');
      await this.authz.require(principal, 'task.create', ctx, { projectId: project.id, resourceType: 'project', resourceId: project.id });
    }
    if (!project.is_active) throw conflict(`Project "${project.slug}" is deleted; restore it or choose another project`);
    return project;
  }
}

/**
 * The job a task runs. `commands` and `script` run in a sandbox; `prompt` is answered by
 * inference on a node serving it (with `model`, else the first model of that node); while no
 * node serves inference, the dispatcher fails such a job at once with a reason, it never sits in
 * the queue forever.
 */
export function jobFor(
  mode: InputMode,
  prompt: string,
  o: { timeoutSeconds: number; image: string; model?: string; useInference?: boolean },
): { kind: JobKind; payload: Record<string, unknown> } {
  // Off unless asked: a sandbox reaches no model, as it reaches nothing else.
  const sandbox = { image: o.image, timeout_seconds: o.timeoutSeconds, network_policy: 'none', ...(o.useInference ? { use_inference: true } : {}) };
  if (mode === 'commands') {
    const command = commandsArgv(prompt);
    if (!command) throw badRequest('prompt has no commands: give one shell command per line');
    return { kind: 'sandbox', payload: { ...sandbox, command } };
  }
  if (mode === 'script') return { kind: 'sandbox', payload: { ...sandbox, files: { 'script.sh': prompt }, command: ['sh', '/job/script.sh'] } };
  return { kind: 'inference', payload: { timeout_seconds: o.timeoutSeconds, ...(o.model !== undefined ? { model: o.model } : {}) } };
}

/**
 * The argv of a `commands` task: each non-empty line runs with `sh -c` in order, and the first
 * that fails ends the job with its exit code. One line runs as is (`['sh', '-c', line]`); several
 * run under a small wrapper, each line quoted so that none can change how the others run.
 * null when there is no command at all.
 */
export function commandsArgv(prompt: string): string[] | null {
  const lines = prompt
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
  if (lines.length === 0) return null;
  if (lines.length === 1) return ['sh', '-c', lines[0]!];
  return ['sh', '-c', lines.map((l) => `sh -c ${shellQuote(l)} || exit $?`).join('\n')];
}

/** Lowercase, runs of anything but [a-z0-9] become one dash, no dash at either end. */
export function normalizeTaskName(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

/**
 * The name before uniqueness: `task_name` normalized, else the first words of the prompt, else
 * `task`. At most 60 characters (cut between words where the prompt is the source). A name
 * that looks like a uuid would be read as an id, so it gets a `task-` prefix.
 */
export function taskNameBase(taskName: string | undefined, prompt: string): string {
  let base = taskName === undefined ? '' : normalizeTaskName(taskName).slice(0, MAX_TASK_NAME).replace(/-+$/, '');
  if (base === '') {
    const words = normalizeTaskName(prompt.slice(0, 400)).split('-').filter(Boolean).slice(0, 6);
    while (words.join('-').length > MAX_TASK_NAME && words.length > 1) words.pop();
    base = words.join('-').slice(0, MAX_TASK_NAME).replace(/-+$/, '');
  }
  if (base === '') base = 'task';
  if (isUuid(base)) base = `task-${base}`;
  return base;
}

/** `base` when free, else `base-<n>` with n one more than the highest taken (from 2). */
export function nextFreeName(base: string, taken: readonly string[]): string {
  if (!taken.includes(base)) return base;
  let n = 1;
  for (const name of taken) {
    const m = /-(\d+)$/.exec(name.slice(base.length));
    if (m && name.length === base.length + m[0].length) n = Math.max(n, Number(m[1]));
  }
  return `${base}-${n + 1}`;
}
