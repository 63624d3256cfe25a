import { describe, expect, it } from 'vitest';
import { renderParams, type EventFields } from '../../server/connectors/subscriptions';
import { driverFor } from '../../server/connectors/types/index';

// How an event's message becomes an operation's parameters: what a subscriber's template names is
// filled in, and the message lands where each kind of operation carries it when the template is silent.

const fields: EventFields = {
  event: 'task.failed',
  subject: 'CyNode: task "nightly" failed',
  text: 'Task "nightly" (t-1) failed: exit 7',
  task_id: 't-1',
  task_name: 'nightly',
  task_status: 'failed',
  failure_reason: 'exit 7',
  node_id: '',
  node_name: '',
};
const op = (type: string, name: string) => driverFor(type)!.spec.operations.find((o) => o.name === name)!;

describe('event parameters', () => {
  it('fills placeholders in every string of the template, nested ones too, and leaves other values alone', () => {
    const params = renderParams(op('http', 'request'), { method: 'POST', path: 'hooks/{{ event }}', query: { id: '{{task_id}}', n: 3 }, body: { lines: ['{{task_name}}: {{failure_reason}}'] } }, fields);
    expect(params).toEqual({ method: 'POST', path: 'hooks/task.failed', query: { id: 't-1', n: 3 }, body: { lines: ['nightly: exit 7'] } });
  });

  it('puts the subject and text into a mail, and the text into a chat post, unless the template says otherwise', () => {
    expect(renderParams(op('smtp', 'send_message'), { to: 'ops@example.org' }, fields)).toEqual({ to: 'ops@example.org', subject: fields.subject, text: fields.text });
    expect(renderParams(op('slack', 'post_message'), { channel: 'C1', text: '{{task_name}} {{task_status}}' }, fields)).toEqual({ channel: 'C1', text: 'nightly failed' });
    expect(renderParams(op('discord', 'post_message'), { channel_id: '1' }, fields)).toEqual({ channel_id: '1', text: fields.text });
  });

  it('sends the event as JSON from an http request with no body, but never on GET', () => {
    expect(renderParams(op('http', 'request'), { method: 'POST', path: 'x' }, fields).body).toEqual({
      event: 'task.failed',
      subject: fields.subject,
      text: fields.text,
      task_id: 't-1',
      task_name: 'nightly',
      task_status: 'failed',
      failure_reason: 'exit 7',
    });
    expect(renderParams(op('http', 'request'), { method: 'GET', path: 'x' }, fields)).toEqual({ method: 'GET', path: 'x' });
  });

  it('does not change the stored template', () => {
    const template = { to: 'ops@example.org', text: '{{text}}' };
    renderParams(op('smtp', 'send_message'), template, fields);
    expect(template).toEqual({ to: 'ops@example.org', text: '{{text}}' });
  });
});
