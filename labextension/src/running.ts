/** Runs from the pipeline panel: start one with the form's parameters, follow it (also one
 * started before the panel was opened), stop it, show it and the notebook's run history. */

import {
  cancelRun,
  errorReply,
  reportUrl,
  runHistory,
  runStatus,
  startRun
} from './api';
import { messageOf } from './dom';
import type { PanelParts } from './host';
import {
  changedParameters,
  errorHead,
  isFinished,
  runStatusText,
  stateLabel
} from './present';
import { historySection, ParameterForm, RunView } from './sections';
import type { Analysis, RunStatus, RunSummary } from './types';

const POLL_MS = 1000;
const TICK_MS = 1000; // the status line counts the seconds of a wait

/** When the run's current wait began, in seconds since the epoch: the server's
 * `phase_since` when it sends one, else when this page first saw the run in that phase
 * (a new phase or message starts the count again). */
export class PhaseClock {
  private seen = '';
  private at = 0;

  since(run: RunSummary, now: number): number {
    const key = `${run.id}\n${run.phase ?? ''}\n${run.message ?? ''}`;
    if (key !== this.seen) {
      this.seen = key;
      this.at = now;
    }
    return run.phase_since ?? this.at;
  }
}

/** What the run control tells the panel. */
export interface RunEvents {
  /** The run on show changed (its steps, its state, whether one is followed). */
  changed(): void;
  /** The server refused a parameter's value: show the form with its error. */
  refused(): void;
}

export class RunControl {
  /** The run on show. */
  run: RunStatus | null = null;
  /** The id of the active run being polled. */
  following: string | null = null;
  /** Stop was pressed and the server is ending the run's processes. */
  stopping = false;
  readonly form: ParameterForm = { typed: {}, errors: {} };
  private runView: RunView | null = null;
  private history: RunSummary[] = [];
  private pollTimer: number | undefined;
  private ticker: number | undefined;
  private readonly clock = new PhaseClock();
  private disposed = false;

  constructor(
    private readonly panel: PanelParts,
    private readonly historyBox: HTMLElement,
    private readonly events: RunEvents
  ) {}

  dispose(): void {
    this.disposed = true;
    window.clearTimeout(this.pollTimer);
    window.clearInterval(this.ticker);
  }

  async start(analysis: Analysis | null): Promise<void> {
    if (!analysis || !(await this.panel.saved('Run'))) {
      return;
    }
    this.form.errors = {};
    this.panel.say('Starting the run…', 'busy');
    this.panel.setBusy('Starting the run…');
    try {
      const changed = changedParameters(
        analysis.check.parameters,
        this.form.typed
      );
      const run = await startRun(this.panel.path, changed);
      this.follow(run);
    } catch (error) {
      const reply = errorReply(error);
      if (reply?.id) {
        this.panel.say(
          'This notebook is already running: showing that run.',
          'info'
        );
        this.follow(await runStatus(reply.id));
      } else {
        if (reply?.parameter) {
          this.form.errors[reply.parameter] = reply.message;
          this.events.refused();
        }
        this.panel.say(`The run did not start: ${messageOf(error)}`, 'error');
      }
    } finally {
      this.panel.setBusy(null);
    }
  }

  /** Shows a run and polls it until it ends. */
  private follow(run: RunStatus): void {
    window.clearTimeout(this.pollTimer);
    this.following = isFinished(run.state) ? null : run.id;
    this.showRun(run);
    void this.loadHistory(false);
    if (this.following) {
      this.pollTimer = window.setTimeout(() => void this.poll(run.id), POLL_MS);
    }
  }

  private async poll(id: string): Promise<void> {
    if (this.disposed || this.following !== id) {
      return;
    }
    try {
      const run = await runStatus(id);
      if (this.following !== id) {
        return;
      }
      if (!this.run || this.run.id === id) {
        this.showRun(run); // unless the user picked another run from the history
      }
      if (isFinished(run.state)) {
        this.following = null;
        this.events.changed();
        void this.loadHistory(false);
        return;
      }
    } catch (error) {
      this.panel.say(`Lost track of the run: ${messageOf(error)}`, 'error');
    }
    this.pollTimer = window.setTimeout(() => void this.poll(id), POLL_MS);
  }

  async stop(): Promise<void> {
    const id = this.following;
    if (!id) {
      return;
    }
    this.panel.say('Stopping the run…', 'busy');
    this.stopping = true;
    this.events.changed();
    try {
      const run = await cancelRun(id);
      this.following = null;
      window.clearTimeout(this.pollTimer);
      this.showRun(run);
      void this.loadHistory(false);
    } catch (error) {
      this.panel.say(`Cannot stop the run: ${messageOf(error)}`, 'error');
    } finally {
      this.stopping = false;
      this.events.changed();
    }
  }

  private showRun(run: RunStatus): void {
    if (this.disposed) {
      return;
    }
    this.run = run;
    if (!this.runView || this.runView.id !== run.id) {
      this.runView = new RunView(
        run.id,
        (cell, line) =>
          void this.panel.host.selectCell(this.panel.path, cell, line),
        reportUrl,
        id => this.openReport(id)
      );
      this.panel.result.replaceChildren(this.runView.node);
    }
    this.runView.show(run);
    if (isFinished(run.state)) {
      const kind = run.state === 'completed' ? 'success' : 'error';
      const reason =
        run.state === 'completed' || !run.error
          ? ''
          : `: ${errorHead(run.error)}`;
      this.panel.say(
        `Run ${stateLabel(run.state, run.duration)}${reason}`,
        kind
      );
    } else {
      this.sayProgress();
    }
    this.tick(!isFinished(run.state));
    this.events.changed();
    this.renderHistory();
  }

  /** While a run goes on, the status line says what it waits for and for how long, every
   * second, whether or not the server has news. */
  private tick(on: boolean): void {
    if (!on) {
      window.clearInterval(this.ticker);
      this.ticker = undefined;
    } else if (this.ticker === undefined) {
      this.ticker = window.setInterval(() => this.sayProgress(), TICK_MS);
    }
  }

  private sayProgress(): void {
    const run = this.run;
    if (!run || isFinished(run.state) || this.stopping || this.disposed) {
      return;
    }
    const now = Date.now() / 1000;
    this.panel.say(runStatusText(run, this.clock.since(run, now), now), 'busy');
  }

  async loadHistory(attach: boolean): Promise<void> {
    try {
      const history = await runHistory(this.panel.path);
      this.history = history.runs;
      this.renderHistory();
      if (attach && history.active && !this.following) {
        this.follow(await runStatus(history.active));
        this.panel.say(
          'A run of this notebook is in progress: following it.',
          'busy'
        );
      }
    } catch (error) {
      console.warn('nb2pipe: no run history:', error);
    }
  }

  /** The run's report in a JupyterLab tab, at a step's section when one is given. */
  openReport(id: string, step?: string): void {
    const anchor = step ? `#step-${encodeURIComponent(step)}` : '';
    const name = this.panel.path.split('/').pop() ?? this.panel.path;
    this.panel.host.openReport(
      `${reportUrl(id)}${anchor}`,
      `Report: ${name}`,
      this.panel.path
    );
  }

  private renderHistory(): void {
    this.historyBox.replaceChildren(
      historySection(
        this.history,
        this.run?.id ?? null,
        id => void this.pick(id),
        reportUrl,
        id => this.openReport(id)
      )
    );
  }

  /** Shows a past run (the active one is followed). */
  private async pick(id: string): Promise<void> {
    try {
      const run = await runStatus(id);
      if (isFinished(run.state)) {
        this.showRun(run);
      } else {
        this.follow(run);
      }
    } catch (error) {
      this.panel.say(`Cannot show the run: ${messageOf(error)}`, 'error');
    }
  }
}
