import type { ConnectorDriver, ConnectorTypeSpec } from './contract';
import { discordDriver } from './discord';
import { githubDriver } from './github';
import { httpDriver } from './http';
import { imapDriver } from './imap';
import { mattermostDriver } from './mattermost';
import { mcpDriver } from './mcp';
import { slackDriver } from './slack';
import { smtpDriver } from './smtp';

/** Every connector type CyNode ships, by type name: the catalog is read from here. */
export const connectorDrivers: ReadonlyMap<string, ConnectorDriver> = new Map(
  [imapDriver, smtpDriver, httpDriver, mattermostDriver, discordDriver, slackDriver, githubDriver, mcpDriver].map((d) => [d.spec.type, d]),
);

export function driverFor(type: string): ConnectorDriver | undefined {
  return connectorDrivers.get(type);
}

export function catalog(): ConnectorTypeSpec[] {
  return [...connectorDrivers.values()].map((d) => d.spec);
}
