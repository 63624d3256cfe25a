import { describe, expect, it } from 'vitest';
import { inferenceBackend } from '../../server/nodes/control-service';

/* The control plane's inference backend decision: deterministic, first rule wins. */

const IMAGE = 'ollama/ollama';
const cap = (inference: Record<string, unknown>, gpu: Record<string, unknown> = { present: false }) => ({ inference, gpu });
const able = { supported: true, mode: 'allow', running: false, existing_service: false };

describe('inferenceBackend', () => {
  it.each([
    ['a node using a host Ollama', cap({ ...able, existing_service: true, running: true }), []],
    ['inference disabled by the node', cap({ ...able, mode: 'disabled' }), []],
    ['a node that cannot run inference', cap({ ...able, supported: false }), []],
    ['a node that says nothing about inference', cap({}), []],
    ['no capability report yet', null, []],
    ['a sandbox_only node', cap(able), ['sandbox_only']],
  ])('does not start Ollama on %s', (_what, capability, labels) => {
    expect(inferenceBackend(capability, labels, IMAGE)).toEqual({ enabled: false });
  });

  it('starts it otherwise, with the variant the GPUs call for', () => {
    expect(inferenceBackend(cap(able), [], IMAGE)).toEqual({ enabled: true, variant: 'cpu', image: IMAGE });
    expect(inferenceBackend(cap({ ...able, mode: 'require' }), ['gpu'], IMAGE)).toEqual({ enabled: true, variant: 'cpu', image: IMAGE });
    expect(inferenceBackend(cap(able, { present: true, devices: [{ vendor: 'NVIDIA', model: 'RTX 4090' }] }), [], IMAGE)).toEqual({ enabled: true, variant: 'cuda', image: IMAGE });
    expect(inferenceBackend(cap(able, { present: true, devices: [{ features: { cuda_capability: '8.9' } }] }), [], IMAGE)).toMatchObject({ variant: 'cuda' });
    // ROCm wins over CUDA on mixed boxes; Ollama's ROCm build is its :rocm tag.
    expect(inferenceBackend(cap(able, { present: true, devices: [{ vendor: 'nvidia' }, { vendor: 'AMD', features: { rocm_version: '6.1' } }] }), [], IMAGE)).toEqual({ enabled: true, variant: 'rocm', image: 'ollama/ollama:rocm' });
    expect(inferenceBackend(cap(able, { present: true, devices: [{ vendor: 'amd' }] }), [], 'registry.lan/ollama:0.12')).toEqual({ enabled: true, variant: 'rocm', image: 'registry.lan/ollama:0.12' });
  });

  it('is deterministic: the same report gives the same answer', () => {
    const c = cap(able, { present: true, devices: [{ vendor: 'nvidia' }] });
    expect(inferenceBackend(c, [], IMAGE)).toEqual(inferenceBackend(JSON.parse(JSON.stringify(c)), [], IMAGE));
  });
});
