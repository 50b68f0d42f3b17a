/**
 * The order of measurement. Each round runs every step once; a step is one scenario, or two that are
 * measured next to each other (`measuredWith`): back to back, or part by part when both are measured
 * in parts.
 */
import { PARTS_PER_RUN, type Part, type Sample, type Scenario, sample } from './context.js';
import { summariseLatencyMs } from './stats.js';

/** One scenario, or two measured next to each other. */
export type Step = readonly [Scenario] | readonly [Scenario, Scenario];

/** Groups each scenario with its selected `measuredWith` partner, at the first one's place. */
export function planSteps(scenarios: readonly Scenario[]): Step[] {
  const placed = new Set<string>();
  const steps: Step[] = [];
  for (const scenario of scenarios) {
    if (placed.has(scenario.name)) continue;
    const partner = scenarios.find(
      (other) =>
        other !== scenario && !placed.has(other.name) && (other.name === scenario.measuredWith || other.measuredWith === scenario.name),
    );
    placed.add(scenario.name);
    if (partner) placed.add(partner.name);
    steps.push(partner ? [scenario, partner] : [scenario]);
  }
  return steps;
}

/** Runs one step once; resolves to one Sample per scenario, in the step's order. */
export async function runStep(step: Step): Promise<Sample[]> {
  const [first, second] = step;
  if (second?.part && first.part) {
    const parts: [Part[], Part[]] = [[], []];
    for (let i = 0; i < PARTS_PER_RUN; i += 1) {
      parts[0].push(await first.part());
      parts[1].push(await second.part());
    }
    return [fromParts(parts[0]), fromParts(parts[1])];
  }
  const samples = [await runWhole(first)];
  if (second) samples.push(await runWhole(second));
  return samples;
}

async function runWhole(scenario: Scenario): Promise<Sample> {
  if (scenario.run) return scenario.run();
  const parts: Part[] = [];
  for (let i = 0; i < PARTS_PER_RUN; i += 1) parts.push(await scenario.part());
  return fromParts(parts);
}

/** One Sample from a run's parts: counts and times add up; latency percentiles span every part. */
export function fromParts(parts: readonly Part[]): Sample {
  const latencies = parts.flatMap((part) => part.latenciesMs ?? []);
  if (latencies.length > 0) return latencySample(latencies);
  return sample(
    parts.reduce((sum, part) => sum + part.jobs, 0),
    parts.reduce((sum, part) => sum + part.elapsedMs, 0),
  );
}

/** A latency run as a Sample: percentiles in microseconds; jobs/s is 1 / mean latency. */
export function latencySample(latenciesMs: readonly number[]): Sample {
  const totalMs = latenciesMs.reduce((sum, ms) => sum + ms, 0);
  return sample(latenciesMs.length, totalMs, { ...summariseLatencyMs(latenciesMs) });
}
