/**
 * The JSON documents served under /nb2pipe/ (nb2pipe/server/documents.py and runs.py).
 * test/types.test.ts checks these against fixtures the Python side writes.
 */

export type Severity = 'error' | 'warning';

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

export interface LayoutNode {
  name: string;
  layer: number;
  first_cell: number;
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LabelBox {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface LayoutEdge {
  source: string;
  target: string;
  variables: string[];
  label: string;
  dashed: boolean;
  /** Joined cubic curves: the start, then (control, control, end) for each piece. */
  points: [number, number][];
  label_box: LabelBox | null;
}

export interface Layout {
  width: number;
  height: number;
  node_font: number;
  label_font: number;
  nodes: LayoutNode[];
  edges: LayoutEdge[];
}

export interface Analysis {
  path: string;
  ok: boolean;
  check: CheckDocument;
  layout: Layout;
  default_output: string;
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
  /** Only when nothing was written (HTTP 409). */
  message?: string;
}

export type StepState = 'running' | 'cached' | 'completed' | 'failed';
export type RunState = 'starting' | 'running' | 'completed' | 'failed';

export interface StepStatus {
  state: StepState;
  duration: number | null;
  error: string | null;
}

export interface RunStarted {
  id: string;
}

export interface RunStatus {
  id: string;
  path: string;
  state: RunState;
  steps: Record<string, StepStatus>;
  log: string[];
  error: string | null;
}

/** The body of every 4xx/5xx answer. */
export interface ErrorReply {
  message: string;
  reason?: string | null;
}
