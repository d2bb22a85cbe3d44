// Copyright (c) cs3sync contributors. Apache-2.0.
import { IQuota } from './types';

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];

/** Human-readable size in decimal units, e.g. 7800000000 -> "7.8 GB". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !isFinite(bytes)) {
    return '—';
  }
  let value = Math.max(0, bytes);
  let unit = 0;
  while (value >= 1000 && unit < UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

/** The used share of a quota in percent (0..100), or null when unlimited. */
export function quotaPercent(quota: IQuota | null | undefined): number | null {
  if (!quota || quota.unlimited || !quota.total) {
    return null;
  }
  return Math.min(100, Math.round((quota.used / quota.total) * 100));
}

export type QuotaLevel = 'ok' | 'warning' | 'critical';

/** Warning from 75 %, critical from 90 % (configurable thresholds). */
export function quotaLevel(
  percent: number | null,
  warning = 75,
  critical = 90
): QuotaLevel {
  if (percent === null) {
    return 'ok';
  }
  if (percent >= critical) {
    return 'critical';
  }
  if (percent >= warning) {
    return 'warning';
  }
  return 'ok';
}

/** A date from seconds since the epoch, or an empty string. */
export function formatDate(seconds: number | null | undefined): string {
  if (!seconds) {
    return '';
  }
  return new Date(seconds * 1000).toLocaleString();
}

/** The directory part of an API path ('' for a top-level file). */
export function dirname(path: string): string {
  const index = path.lastIndexOf('/');
  return index < 0 ? '' : path.slice(0, index);
}

/**
 * Props that make a list row a keyboard-operable button: focusable, Enter or
 * Space opens it like a click. Rows that cannot open get none of them.
 */
export function activation(
  open: (() => void) | null,
  label: string
): {
  role?: 'button';
  tabIndex?: number;
  'aria-label'?: string;
  'aria-disabled'?: boolean;
  onClick?: () => void;
  onKeyDown?: (event: { key: string; preventDefault(): void }) => void;
} {
  if (!open) {
    return { 'aria-disabled': true };
  }
  return {
    role: 'button',
    tabIndex: 0,
    'aria-label': label,
    onClick: open,
    onKeyDown: event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        open();
      }
    }
  };
}
