// Inline icons (stroke, 24 grid), so that no emoji font is needed.
export type IconName = 'clock' | 'lock' | 'mute' | 'clip' | 'flag' | 'check' | 'x' | 'archive' | 'route' | 'transfer' | 'help' | 'mail' | 'eye' | 'dots' | 'ban' | 'panel' | 'play'

export const icons: Record<IconName, readonly string[]> = {
  clock: ['M12 7v5l3 2', 'M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z'],
  lock: ['M7 11V7a5 5 0 0 1 10 0v4', 'M5 11h14v10H5z'],
  mute: ['M11 5 6 9H2v6h4l5 4z', 'm22 9-6 6', 'm16 9 6 6'],
  clip: ['m21 11-8.6 8.6a5 5 0 0 1-7-7L14 4a3.3 3.3 0 0 1 4.7 4.7l-8.6 8.6a1.7 1.7 0 0 1-2.4-2.4L15.6 7'],
  flag: ['M4 22V4', 'M4 4h12l-2 4 2 4H4'],
  check: ['M20 6 9 17l-5-5'],
  x: ['M18 6 6 18', 'm6 6 12 12'],
  archive: ['M3 4h18v4H3z', 'M5 8v12h14V8', 'M10 12h4'],
  route: ['M3 12h14', 'm13 6 6 6-6 6'],
  transfer: ['M7 17 17 7', 'M8 7h9v9'],
  help: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z', 'M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3', 'M12 17h.01'],
  mail: ['M3 5h18v14H3z', 'm3 7 9 6 9-6'],
  eye: ['M2 12s3.6-7 10-7 10 7 10 7-3.6 7-10 7S2 12 2 12Z', 'M12 15a3 3 0 1 0 0-6 3 3 0 0 0 0 6Z'],
  dots: ['M12 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z', 'M19 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z', 'M5 13a1 1 0 1 0 0-2 1 1 0 0 0 0 2Z'],
  ban: ['M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18Z', 'm5.7 5.7 12.6 12.6'],
  panel: ['M3 4h18v16H3z', 'M15 4v16'],
  play: ['m6 4 14 8-14 8z'],
}
