import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseMaintenanceWindow, windowState } from './maintenance-window.js';

// 2026-03-07 is a Saturday.
const at = (iso: string) => new Date(iso);

test('no windows: always open', () => {
  assert.deepEqual(windowState(undefined, at('2026-03-07T12:00:00Z')), { open: true });
});

test('a window is open inside its hours on its days and says when it opens next outside them', () => {
  const w = [parseMaintenanceWindow({ days: ['sat', 'sun'], hours: '02:00-04:00' })];
  assert.deepEqual(windowState(w, at('2026-03-07T03:59:00Z')), { open: true });
  assert.deepEqual(windowState(w, at('2026-03-07T04:00:00Z')), {
    open: false,
    opensAt: at('2026-03-08T02:00:00Z'),
  });
  // Monday: the next opening is Saturday.
  assert.deepEqual(windowState(w, at('2026-03-09T02:30:00Z')), {
    open: false,
    opensAt: at('2026-03-14T02:00:00Z'),
  });
});

test('a range across midnight opens on a listed day and runs into the next', () => {
  const w = [parseMaintenanceWindow({ days: ['fri'], hours: '22:00-04:00' })];
  assert.equal(windowState(w, at('2026-03-06T23:00:00Z')).open, true, 'Friday night');
  assert.equal(windowState(w, at('2026-03-07T03:00:00Z')).open, true, 'early Saturday belongs to Friday');
  assert.equal(windowState(w, at('2026-03-08T03:00:00Z')).open, false, 'early Sunday does not');
});

test('hours are read in the window’s time zone', () => {
  const w = [parseMaintenanceWindow({ hours: '09:00-10:00', timeZone: 'Asia/Tokyo' })];
  assert.equal(windowState(w, at('2026-03-07T00:30:00Z')).open, true, '09:30 in Tokyo');
  assert.deepEqual(windowState(w, at('2026-03-07T01:00:00Z')), {
    open: false,
    opensAt: at('2026-03-08T00:00:00Z'),
  });
});

test('a bad window names its field', () => {
  assert.throws(() => parseMaintenanceWindow({ hours: '9-10' }), /hours: must be HH:MM-HH:MM/);
  assert.throws(() => parseMaintenanceWindow({ days: [] }), /days: must be a non-empty list/);
  assert.throws(
    () => parseMaintenanceWindow({ timeZone: 'Nowhere/City' }),
    /timeZone: Nowhere\/City is not a known/,
  );
  assert.throws(() => parseMaintenanceWindow({ weeks: 1 }), /weeks: is not a known field/);
});
