/**
 * The worker's seam: a job source hands out reservations and, on a stop, takes back the ones that were
 * never started. The worker is a concurrency budget plus a runner on top of it; it never sees a
 * connection, a reserve or a tube's connection layout, so the source can be one server
 * ({@link ReservationEngine}) or, later, a set of servers behind the same interface.
 */
import type { Reservation } from '../worker/reservation.js';

/** Where a source delivers reservations: the worker's runner. */
export interface JobSink {
  /**
   * How many more jobs the runner can take now. The source never has more reserves outstanding than
   * this, so a job it reserves always finds a free place: nothing waits reserved and unstarted.
   */
  readonly capacity: number;
  /**
   * A reserved job for the runner, which owns it from here: it settles it (or gives it back), then
   * calls {@link Reservation.end}. Called outside the connection's reply handler.
   */
  accept(reservation: Reservation): void;
}

/** A reservation engine over one or more servers. */
export interface JobSource {
  /** Opens the first connections and starts reserving for `sink`. Rejects with ConnectionError when unreachable. */
  open(sink: JobSink): Promise<void>;
  /** The sink's capacity grew (a job's settling command is on the wire): reserve more if there is work. */
  pump(): void;
  /** A job the runner declined because the worker is stopping: given back to the server by {@link stopReserving}. */
  giveBack(reservation: Reservation): void;
  /**
   * Stops reserving: waiting reserves are cut off, reserves on the wire are answered, and every job that
   * arrived too late to run is given back to ready at once. Resolves when nothing more can arrive.
   */
  stopReserving(): Promise<void>;
  /** Closes every connection: the jobs still held on them go back to ready on the server. Idempotent. */
  close(): Promise<void>;
}
