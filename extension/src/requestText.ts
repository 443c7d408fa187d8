import {
  formatBytes,
  formatDuration,
  formatTime,
  HELD_MARK,
  recordCaller,
  recordStatus,
  recordTitle,
  RequestRecord,
} from './viewModel';

export { HELD_MARK };

/** A request record's fields as text, the same in the Request Log tree and its table. */
export interface RecordText {
  title: string;
  status: string;
  caller: string;
  requestBytes: string;
  responseBytes: string;
  duration: string;
  time: string;
}

export function recordText(r: RequestRecord): RecordText {
  return {
    title: recordTitle(r),
    status: recordStatus(r),
    caller: recordCaller(r),
    requestBytes: formatBytes(r.requestBytes),
    responseBytes: formatBytes(r.responseBytes),
    duration: formatDuration(r.duration),
    time: formatTime(r.started),
  };
}
