/**
 * The JSON documents served under /nb2pipe/ (nb2pipe/server/documents.py and runs.py).
 * test/types.test.ts checks these against fixtures the Python side writes.
 */

/** `info`: worth knowing, nothing to fix (left out of the warning count). */
export type Severity = 'error' | 'warning' | 'info';

/** One entry of `nb2pipe.tags.grammar_json()`. */
export interface TagSpec {
  kind: string;
  prefix: string;
  value: 'name' | 'int' | 'seconds' | 'off' | 'number' | 'size' | null;
  description: string;
  alias_of: string | null;
  origin: string;
  example: string;
}

export interface Grammar {
  tags: TagSpec[];
  ignored_prefixes: string[];
  identifier_pattern: string;
}

/** The `nb2pipe check --format json` document. */
export interface CheckStep {
  name: string;
  cells: number[];
  uses: string[];
  defines: string[];
  after: string[];
}

export interface CheckEdge {
  source: string;
  target: string;
  variables: string[];
}

export type ParameterValue =
  | string
  | number
  | boolean
  | null
  | ParameterValue[]
  | { [key: string]: ParameterValue };

export interface CheckParameter {
  name: string;
  type: string;
  default: ParameterValue;
  /** The default as the parameters cell writes it (`1.0`, `'a.csv'`). */
  source: string;
}

export interface Diagnostic {
  code: string;
  severity: Severity;
  message: string;
  /** 1-based position of the cell in the notebook, markdown cells counted. */
  cell: number | null;
  line: number | null;
  hint: string | null;
}

export interface CheckDocument {
  notebook: string;
  steps: CheckStep[];
  edges: CheckEdge[];
  parameters: CheckParameter[];
  diagnostics: Diagnostic[];
}

/** A step's options, from its tags: the fields of `nb2pipe.model.StepOptions`. */
export type StepOptions = Record<string, string | number | boolean | null>;

export interface StepInfo {
  name: string;
  /** The cell that starts the step (1-based, markdown cells counted). */
  first_cell: number;
  options: StepOptions;
}

/** For a notebook without step tags: the steps each automatic split would make. */
export interface Onramp {
  headings: string[];
  cells: string[];
}

export type Split = 'tags' | 'headings' | 'cells';

export interface Analysis {
  path: string;
  ok: boolean;
  split: Split;
  check: CheckDocument;
  steps: StepInfo[];
  /** Edges on a dependency cycle, as [source, target]. */
  cycle_edges: [string, string][];
  onramp: Onramp | null;
  default_output: string;
}

/** The tags that make a split explicit: each listed cell gets `tags` as its whole tag list. */
export interface SplitTags {
  path: string;
  split: Split;
  cells: { cell: number; id: string; tags: string[] }[];
}

export interface TagProblems {
  problems: Record<string, string>;
}

/** A diagnostic of a conversion (`Diagnostic.to_json()`), which also names the cell id. */
export interface ExportDiagnostic extends Diagnostic {
  cell_id: string | null;
}

export interface ExportResult {
  ok: boolean;
  output: string;
  written: string[];
  unchanged: string[];
  flow: string | null;
  diagnostics: ExportDiagnostic[];
  /** Files changed by hand since they were exported: Export with `force` overwrites them. */
  edited: string[];
  /** Only when nothing was written (HTTP 409). */
  message?: string;
}

export interface ExportDiff {
  output: string;
  files: { path: string; diff: string }[];
  message: string | null;
}

export type StepState =
  | 'pending'
  | 'running'
  | 'cached'
  | 'completed'
  | 'failed'
  | 'skipped'
  | 'cancelled';
export type RunState =
  'starting' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface StepStatus {
  state: StepState;
  duration: number | null;
  error: string | null;
  cell: number | null;
  line: number | null;
}

/** A run as a notebook's history lists it. */
export interface RunSummary {
  id: string;
  path: string;
  state: RunState;
  /** What the run is doing now (from `nb2pipe run`'s phase events). */
  phase: string | null;
  message: string | null;
  /** When the phase is a wait (the local Prefect server starting): since when, in seconds
   * since the epoch, and why, from servers whose phase events say it; without them the panel
   * counts from when it saw the phase. */
  phase_since?: number | null;
  phase_detail?: string | null;
  error: string | null;
  /** Parameter values as the user typed them. */
  parameters: Record<string, string>;
  /** Seconds since the epoch. */
  started: number;
  ended: number | null;
  duration: number | null;
  /** Whether the run wrote an HTML report (served at runs/ID/report). */
  report: boolean;
  /** The flow run's page in the Prefect UI, once the run knows it. */
  flow_run: string | null;
}

export interface RunStatus extends RunSummary {
  steps: Record<string, StepStatus>;
  log: string[];
}

export interface RunHistory {
  path: string;
  active: string | null;
  runs: RunSummary[];
}

/** The body of every 4xx/5xx answer. */
export interface ErrorReply {
  message: string;
  reason?: string | null;
  /** A run refused for a parameter's value names it. */
  parameter?: string | null;
  /** A second run of a notebook names the one already running. */
  id?: string;
  /** A newer request for the same notebook replaced this one. */
  superseded?: boolean;
}
