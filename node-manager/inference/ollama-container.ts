import { existsSync } from 'node:fs';
import type Dockerode from 'dockerode';
import { engineMessage, engineStatus } from '../sandbox/engine';

/** Labels of the Ollama container a Node Manager starts: how a restarted one finds and removes it. */
export const LABEL_OLLAMA = 'io.cynode.ollama';
export const LABEL_OLLAMA_INSTANCE = 'io.cynode.ollama.instance';

/** The default image when the config names none. */
export const DEFAULT_OLLAMA_IMAGE = 'ollama/ollama';

/** Ollama could not be started; the config ack says `failed` with this message. */
export class InferenceStartError extends Error {}

export interface OllamaContainerOptions {
  docker: Dockerode;
  /** The Node Manager's stable id; its container carries it. */
  instanceId: string;
  /** Where models live across restarts of the container (a named volume). */
  volume?: string;
}

/**
 * The one Ollama container a node runs when no host Ollama exists and its config says so:
 * published on loopback only (the Worker API is the way in from outside, see
 * docs/architecture.md#processes-and-ports), models in a named volume, every GPU the host has. Images are never pulled behind the operator's
 * back, as with sandbox images: a missing image is a clear failure naming it.
 */
export class OllamaContainer {
  private container: Dockerode.Container | undefined;

  constructor(private readonly o: OllamaContainerOptions) {}

  get name(): string {
    return `cynode-ollama-${this.o.instanceId.replace(/[^a-zA-Z0-9_.-]/g, '').slice(0, 12)}`;
  }

  /** Whether the engine has this image locally (images are never pulled, so this decides if one can start). */
  async imagePresent(image: string): Promise<boolean> {
    try {
      await this.o.docker.getImage(image).inspect();
      return true;
    } catch {
      return false;
    }
  }

  /** Starts the container (replacing one a previous run left); throws InferenceStartError. */
  async start(image: string, port: number): Promise<void> {
    const docker = this.o.docker;
    await this.removeLeftovers();
    try {
      await docker.getImage(image).inspect();
    } catch (err) {
      if (engineStatus(err) === 404) {
        throw new InferenceStartError(`the Ollama image ${image} is not present on this node (images are never pulled automatically): run "docker pull ${image}", or run Ollama on the host and set OLLAMA_HOST`);
      }
      throw new InferenceStartError(`cannot start Ollama: the container engine did not answer for image ${image}: ${engineMessage(err)}`);
    }
    try {
      this.container = await docker.createContainer({
        name: this.name,
        Image: image,
        Labels: { [LABEL_OLLAMA]: 'true', [LABEL_OLLAMA_INSTANCE]: this.o.instanceId },
        Env: ['OLLAMA_HOST=0.0.0.0:11434'],
        ExposedPorts: { '11434/tcp': {} },
        HostConfig: {
          PortBindings: { '11434/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
          Binds: [`${this.o.volume ?? 'cynode-ollama-models'}:/root/.ollama`],
          ...gpuAccess(),
        },
      });
      await this.container.start();
    } catch (err) {
      await this.stop();
      throw new InferenceStartError(`cannot start Ollama from image ${image}: ${engineMessage(err)}`);
    }
  }

  /** Stops and removes the container this node started (models stay in the volume). */
  async stop(): Promise<void> {
    const c = this.container;
    this.container = undefined;
    if (c) await c.remove({ force: true }).catch(() => {});
  }

  private async removeLeftovers(): Promise<void> {
    const list = await this.o.docker.listContainers({ all: true, filters: { label: [`${LABEL_OLLAMA_INSTANCE}=${this.o.instanceId}`] } }).catch(() => []);
    for (const c of list) await this.o.docker.getContainer(c.Id).remove({ force: true }).catch(() => {});
  }
}

/** All GPUs to Ollama: NVIDIA through the device request, AMD through its device nodes. */
function gpuAccess(): Pick<Dockerode.HostConfig, 'DeviceRequests' | 'Devices'> {
  if (existsSync('/dev/nvidia0')) return { DeviceRequests: [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }] };
  if (existsSync('/dev/kfd')) {
    return { Devices: ['/dev/kfd', '/dev/dri'].filter((p) => existsSync(p)).map((p) => ({ PathOnHost: p, PathInContainer: p, CgroupPermissions: 'rwm' })) };
  }
  return {};
}
