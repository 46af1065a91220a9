/**
 * The one pipeline panel, in JupyterLab's right sidebar: it shows the pipeline of the active
 * notebook and follows it from notebook to notebook. Each notebook keeps its own view (its
 * output folder, Run parameters, the run it follows) while it is open.
 */

import { PathExt } from '@jupyterlab/coreutils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { Panel, Widget } from '@lumino/widgets';

import { html } from './dom';
import type { PanelHost } from './host';
import { PipelinePanel } from './panel';

/** Three steps and their edges, in the colours of the theme's icons. */
export const pipelineIcon = new LabIcon({
  name: 'nb2pipe:pipeline',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<rect x="5" y="1" width="6" height="4" rx="1"/>' +
    '<rect x="1" y="11" width="6" height="4" rx="1"/>' +
    '<rect x="9" y="11" width="6" height="4" rx="1"/>' +
    '<path d="M7.5 5h1v2.5H12.5v3.5h-1V8.5h-7V11h-1V7.5h4z"/>' +
    '</g></svg>'
});

export const SIDEBAR_ID = 'nb2pipe-pipeline';

export class PipelineSidebar extends Panel {
  private readonly views = new Map<string, PipelinePanel>();
  private readonly empty: Widget;
  private shown: string | null = null;
  /** The notebook to show once the sidebar is opened. */
  private wanted: string | null = null;

  constructor(private readonly host: PanelHost) {
    super();
    this.id = SIDEBAR_ID;
    this.title.icon = pipelineIcon;
    this.title.caption =
      'Pipeline (nb2pipe): the active notebook as a pipeline';
    this.addClass('nb2pipe-sidebar');
    this.empty = new Widget();
    this.empty.addClass('nb2pipe-sidebar-empty');
    html(
      'p',
      '',
      'Open a notebook to see it as a pipeline: its steps, their graph, ' +
        'its diagnostics, Export and Run.',
      this.empty.node
    );
    this.addWidget(this.empty);
  }

  /** The notebook whose pipeline is on show. */
  get path(): string | null {
    return this.shown;
  }

  /** The view of a notebook, if it has one. */
  view(path: string): PipelinePanel | undefined {
    return this.views.get(path);
  }

  /** The active notebook changed: show its pipeline now if the sidebar is open, else once
   * it is opened (no view, no analysis, while nobody looks). */
  follow(path: string): void {
    this.wanted = path;
    if (this.isVisible) {
      this.showPipeline(path);
    }
  }

  /** Shows the pipeline of `path`, made on first use. */
  showPipeline(path: string): PipelinePanel {
    this.wanted = path;
    let view = this.views.get(path);
    if (!view || view.isDisposed) {
      view = new PipelinePanel(path, this.host);
      this.views.set(path, view);
      this.addWidget(view);
    }
    for (const widget of this.widgets) {
      widget.setHidden(widget !== view);
    }
    this.shown = path;
    this.title.label = '';
    this.title.caption = `Pipeline of ${PathExt.basename(path)} (nb2pipe)`;
    return view;
  }

  /** The notebook was closed (or renamed): its view goes. A run it started goes on, and
   * opening the notebook again follows it. */
  forget(path: string): void {
    this.views.get(path)?.dispose();
    this.views.delete(path);
    if (this.wanted === path) {
      this.wanted = null;
    }
    if (this.shown === path) {
      this.shown = null;
      for (const widget of this.widgets) {
        widget.setHidden(widget !== this.empty);
      }
      this.title.caption = 'Pipeline (nb2pipe)';
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this.wanted && this.wanted !== this.shown) {
      this.showPipeline(this.wanted);
    }
  }
}
