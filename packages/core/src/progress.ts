/** The progress model the webapp polls: phase, step within the phase, percentage and a message. */

export type JobStatus = 'pending' | 'uploading' | 'processing' | 'completed' | 'failed' | 'cancelled';
export type Phase = 'uploading' | 'grid_generation' | 'coarse_pass' | 'fine_pass' | 'complete';

export const TERMINAL_STATUSES: readonly JobStatus[] = ['completed', 'failed', 'cancelled'];

export interface Progress {
  phase: Phase;
  current_step: number;
  total_steps: number;
  /** current_step / total_steps × 100 within the phase, rounded to one decimal. */
  percentage: number;
  message: string;
}

export function progressOf(phase: Phase, current: number, total: number): Progress {
  const percentage =
    total > 0 ? Math.round((1000 * Math.min(current, total)) / total) / 10 : phase === 'complete' ? 100 : 0;
  // The message, the step and the percentage all count the grids finished (as the old service did): the
  // webapp shows "Coarse selection: grid c/t" over "Step c / t", and they must name the same grid.
  const grid = total > 0 ? Math.min(current, total) : current;
  const message = {
    uploading: 'Uploading photos...',
    grid_generation: 'Generating grids...',
    coarse_pass: `Coarse selection: grid ${grid}/${total}`,
    fine_pass: `Fine selection: grid ${grid}/${total}`,
    complete: 'Complete',
  }[phase];
  return { phase, current_step: grid, total_steps: total, percentage, message };
}
