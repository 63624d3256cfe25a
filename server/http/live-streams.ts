import type { FastifyRequest } from 'fastify';
import { plainAddress } from './addresses';
import type { Principal } from './principal';
import { tooManyRequests } from './problem';

/** What a live stream shows, and how to ask whether its user may still see it. */
export interface StreamWatch {
  /** Streams of one user with the same scope (`run:<id>`) share one access check per round. */
  scope: string;
  stillAllowed(): Promise<boolean>;
}

/** A long-lived response: ended by `end`, `closed` once it is over for whatever reason. */
export interface LiveStream {
  end(): void;
  readonly closed: Promise<void>;
}

interface Open {
  principal: Principal;
  address: string;
  watch: StreamWatch;
  stream: LiveStream;
}

export interface LiveStreamsOptions {
  perUser: number;
  perAddress: number;
  /** Whether the session or API key behind a principal still signs in (active, not expired, its user enabled). */
  credentialValid(principal: Principal): Promise<boolean>;
  /** The safety net for changes no notification told of (an expiry passing, a dropped LISTEN). */
  recheckMs?: number;
  onError?(err: unknown): void;
}

/**
 * The gateway's open event streams. They last as long as their run or task, so they are held to
 * caps of their own, per user and per client address (429 to that user or address only), and not
 * to the request cap. Each is checked again whenever access changes (`recheck`: sign-out, a user
 * disabled, a key revoked, a role binding removed) and at least every `recheckMs`; a stream whose
 * credential stopped working, or whose user may no longer see what it shows, is ended. A check
 * that fails ends its streams too: the client reconnects and is asked again.
 */
export class LiveStreams {
  private readonly open = new Set<Open>();
  private readonly byUser = new Map<string, number>();
  private readonly byAddress = new Map<string, number>();
  private running: Promise<void> | undefined;
  private again = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: LiveStreamsOptions) {
    this.timer = setInterval(() => void this.recheck(), opts.recheckMs ?? 30_000);
    this.timer.unref();
  }

  /**
   * Opens a stream for an authenticated request, or answers 429 when its user or address holds
   * as many as allowed. `start` sends the response head; from then on the request no longer
   * counts against the request cap.
   */
  admit<S extends LiveStream>(request: FastifyRequest, watch: StreamWatch, start: () => S): S {
    const principal = request.principal!;
    const address = plainAddress(request.ip);
    if ((this.byUser.get(principal.userId) ?? 0) >= this.opts.perUser) {
      throw tooManyRequests(`You have ${this.opts.perUser} live streams open already; close one first`, 5);
    }
    if ((this.byAddress.get(address) ?? 0) >= this.opts.perAddress) {
      throw tooManyRequests(`This address has ${this.opts.perAddress} live streams open already; close one first`, 5);
    }
    const stream = start();
    const entry: Open = { principal, address, watch, stream };
    this.open.add(entry);
    bump(this.byUser, principal.userId, 1);
    bump(this.byAddress, address, 1);
    request.slot?.release();
    void stream.closed.then(() => {
      this.open.delete(entry);
      bump(this.byUser, principal.userId, -1);
      bump(this.byAddress, address, -1);
    });
    return stream;
  }

  /** Where failed checks are logged (the gateway's log, once it exists). */
  logTo(log: { warn(obj: object, msg: string): void }): void {
    this.opts.onError ??= (err) => log.warn({ err }, 'a live stream access check failed; the stream was closed');
  }

  /** Checks every open stream again; a change while a round runs gets a round of its own after it. */
  recheck(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        await this.round();
      } while (this.again);
    })().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  /** With the gateway: every stream ends (they would hold it open). */
  close(): void {
    clearInterval(this.timer);
    for (const s of this.open) s.stream.end();
  }

  private async round(): Promise<void> {
    const credentials = new Map<string, Promise<boolean>>();
    const scopes = new Map<string, Promise<boolean>>();
    const ask = (memo: Map<string, Promise<boolean>>, key: string, check: () => Promise<boolean>) => {
      let answer = memo.get(key);
      if (!answer) memo.set(key, (answer = check()));
      return answer;
    };
    await Promise.all(
      [...this.open].map(async (s) => {
        const { principal, watch } = s;
        let allowed: boolean;
        try {
          allowed =
            (await ask(credentials, `${principal.via}:${principal.sessionId ?? principal.apiKeyId}:${principal.userId}`, () => this.opts.credentialValid(principal))) &&
            (await ask(scopes, `${principal.userId} ${watch.scope}`, () => watch.stillAllowed()));
        } catch (err) {
          this.opts.onError?.(err);
          allowed = false;
        }
        if (!allowed) s.stream.end();
      }),
    );
  }
}

function bump(counts: Map<string, number>, key: string, by: number): void {
  const n = (counts.get(key) ?? 0) + by;
  if (n > 0) counts.set(key, n);
  else counts.delete(key);
}
