import { useEffect, useState } from 'react';
import { enc, gateway, ok } from '../api/client';
import { ActionButton } from './common';

type Status = 'pending' | 'approved' | 'denied' | 'expired';

/** The approval id a held call's result names: "… waits for the user's approval (<id>) …". */
export function approvalIdOf(resultText: string): string | null {
  return /\(([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\)/i.exec(resultText)?.[1] ?? null;
}

/**
 * Approve or deny a call the agent held (README "The project-manager agent"): approving runs it
 * now, and the agent hears the outcome with the next message in this chat.
 */
export function ApprovalCard({ approvalId, tool }: { approvalId: string; tool: string }) {
  const [status, setStatus] = useState<Status | null>(null);
  useEffect(() => {
    let live = true;
    // Only pending calls can be decided; the list says whether this one still is.
    void ok(gateway.GET('/v1/agent/approvals', { params: { query: { status: 'pending', limit: 200 } } }))
      .then((r) => live && setStatus(r.approvals.some((a) => a.id === approvalId) ? 'pending' : 'expired'))
      .catch(() => live && setStatus(null));
    return () => {
      live = false;
    };
  }, [approvalId]);
  const decide = async (decision: 'approve' | 'deny') => {
    const r = await ok(gateway.POST('/v1/agent/approvals/{id}', { params: { path: { id: enc(approvalId) } }, body: { decision } }));
    setStatus(r.status);
  };
  if (status === null) return null;
  return (
    <div className="approval-card" role="group" aria-label={`Approval for ${tool}`}>
      {status === 'pending' ? (
        <>
          <span>
            The agent asks to run <code>{tool}</code>.
          </span>
          <ActionButton className="btn primary" onAction={() => decide('approve')}>
            Approve
          </ActionButton>
          <ActionButton className="btn" onAction={() => decide('deny')}>
            Deny
          </ActionButton>
        </>
      ) : (
        <span className="muted small approval-status">
          {status === 'approved' ? 'Approved: it ran; the agent hears the outcome with your next message.' : status === 'denied' ? 'Denied: nothing was run.' : 'No longer waiting for a decision.'}
        </span>
      )}
    </div>
  );
}
