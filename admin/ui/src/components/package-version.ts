/**
 * The package's own version (its sgrid.json or package.json `version`)
 * beside the registry's vN: "v3 · 1.4.0". Tasks carry only vN, so their
 * views look the package versions up in the server's patch list.
 */
import { get } from "../api.js";
import { html } from "../html.js";
import { useLoad } from "./common.js";

/** vN, with the package's own version beside it when it has one. */
export function VersionLabel({ version, packageVersion }: { version: number; packageVersion?: string }) {
  if (!version) return null;
  return html`<span class="version-label">v${version}${packageVersion ? html` <span class="package-version muted" title="the package's own version">${packageVersion}</span>` : null}</span>`;
}

/** vN -> the package's own version, for one server ("" app or server: empty). */
export function usePackageVersions(app: string, server: string): Map<number, string> {
  const { data } = useLoad(async () => (app && server ? get(`/api/patches/${encodeURIComponent(app)}/${encodeURIComponent(server)}`) : { patches: [] }), [app, server]);
  return new Map(((data?.patches ?? []) as any[]).filter((p) => p.packageVersion).map((p) => [p.version as number, p.packageVersion as string]));
}
