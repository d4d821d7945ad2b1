/** Where the dashboard is mounted: a constant apart, so that naming it does not load Bull Board. */
export const DASHBOARD_PATH = '/admin/queues';
