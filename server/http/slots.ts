/** A place in a pool, given back once however often `release` is called. */
export interface Slot {
  release(): void;
}

export type Refusal = 'pool_full' | 'address_full';

/**
 * The request caps, three pools of `size` each. Requests that need no credential (sign-in,
 * refresh, setup, the console's files, unknown routes) may read a body slowly: they share a
 * pool of which one client address may hold at most `perAddress`. A request with a credential
 * holds a place in a second pool while the credential is checked (before any body is read, so
 * briefly), then one in the pool of signed-in requests. Clients that send slowly or never sign in
 * therefore fill at most their own share of their own pool: they cannot turn away signed-in users,
 * or nodes on the control plane. Health checks and live streams count in none of them.
 */
export class RequestSlots {
  private open = 0;
  private checking = 0;
  private signedIn = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(private readonly limits: { size: number; perAddress: number }) {}

  /** For a request to a route that needs no credential, from `address`. */
  openSlot(address: string): Slot | Refusal {
    if (this.open >= this.limits.size) return 'pool_full';
    const held = this.byAddress.get(address) ?? 0;
    if (held >= this.limits.perAddress) return 'address_full';
    this.open++;
    this.byAddress.set(address, held + 1);
    return once(() => {
      this.open--;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left > 0) this.byAddress.set(address, left);
      else this.byAddress.delete(address);
    });
  }

  /** For a request while its credential is checked. */
  checkingSlot(): Slot | Refusal {
    if (this.checking >= this.limits.size) return 'pool_full';
    this.checking++;
    return once(() => this.checking--);
  }

  /** For a request whose caller is known. */
  signedInSlot(): Slot | Refusal {
    if (this.signedIn >= this.limits.size) return 'pool_full';
    this.signedIn++;
    return once(() => this.signedIn--);
  }
}

function once(release: () => void): Slot {
  let held = true;
  return {
    release() {
      if (!held) return;
      held = false;
      release();
    },
  };
}
