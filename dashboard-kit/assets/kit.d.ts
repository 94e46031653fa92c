// Types of kit.js for TypeScript callers (tests format figures exactly as the pages do).
export declare const REFRESH_MS: number
export declare function formatBytes(n: number): string
export declare function formatRatio(r: number | null | undefined): string
export declare function formatCount(n: number | null | undefined): string
export declare function formatScore(v: number | null | undefined): string
export declare function formatMs(v: number | null | undefined): string
export declare function formatTime(t: number): string
export declare function formatDuration(seconds: number): string
export declare function $(id: string): HTMLElement | null
export declare function show(id: string, text: string, value?: unknown): void
export declare function el(name: string, text?: string, attrs?: Record<string, unknown>): HTMLElement
export declare function svgEl(name: string, attrs: Record<string, unknown>, text?: string): SVGElement
export declare function clearChart(svg: SVGElement): void
export declare function fillList(dl: HTMLElement, section: unknown): void
export declare function renderMore(
  container: HTMLElement,
  data: Record<string, unknown>,
  known: Set<string>,
): void
export declare function showUpdated(generatedAt: number): void
export declare function startRefresh(url: string, render: (data: never) => void, who: string): void
