import { useState } from 'react';
import { api, enc } from '../api/client';
import type { Connector, ConnectorType } from '../api/types';
import { Catalog } from '../components/connectors/Catalog';
import { EgressAllow } from '../components/connectors/EgressAllow';
import { InstallForm } from '../components/connectors/InstallForm';
import { InstanceDetail } from '../components/connectors/InstanceDetail';
import { InstanceList } from '../components/connectors/InstanceList';
import { Loadable, PageHeader, useLoad } from '../components/common';
import { useSession } from '../store/session';
import { useUi } from '../store/ui';

/** `/connectors`: my instances and the catalog to install from; `/connectors/{id}`: one instance. */
export function ConnectorsPage({ connectorId }: { connectorId?: string }) {
  const catalog = useLoad((signal) => api.get<{ types: ConnectorType[] }>('/v1/connectors/catalog', signal).then((r) => r.types), []);
  const instances = useLoad((signal) => api.get<{ connectors: Connector[] }>('/v1/connectors?limit=200', signal).then((r) => r.connectors), [connectorId], connectorId ? undefined : 15_000);
  const [installing, setInstalling] = useState<ConnectorType | null>(null);
  const navigate = useUi((s) => s.navigate);
  const toast = useUi((s) => s.toast);
  const admin = useSession((s) => s.isAdmin());
  if (connectorId) {
    return (
      <Loadable state={catalog} label="Loading the catalog">
        {(types) => <InstanceDetail id={connectorId} catalog={types} />}
      </Loadable>
    );
  }
  return (
    <div className="page">
      <PageHeader title="Connectors" />
      <section className="section">
        <h2>My connectors</h2>
        <Loadable state={instances} label="Loading connectors">
          {(list) => <InstanceList list={list} />}
        </Loadable>
      </section>
      <section className="section">
        <h2>Catalog</h2>
        {installing ? (
          <InstallForm
            key={installing.type}
            type={installing}
            onCancel={() => setInstalling(null)}
            onInstalled={(c) => {
              toast(`${c.name} installed`);
              navigate(`/connectors/${enc(c.id)}`);
            }}
          />
        ) : (
          <Loadable state={catalog} label="Loading the catalog">
            {(types) => <Catalog types={types} onPick={setInstalling} />}
          </Loadable>
        )}
      </section>
      {admin && (
        <section className="section">
          <h2>Local destinations (admins)</h2>
          <EgressAllow />
        </section>
      )}
    </div>
  );
}
