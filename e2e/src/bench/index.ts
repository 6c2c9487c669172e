export {
  formatProfileSummary,
  monotonicUs,
  type ProfileSummary,
  type ProfileWindow,
  type SelfTime,
  summariseProfile,
} from './cpu-profile.js';
export {
  formatPercentiles,
  lanes,
  machineLine,
  type Percentiles,
  percentiles,
  procStats,
  treeCpuTicks,
} from './report.js';
