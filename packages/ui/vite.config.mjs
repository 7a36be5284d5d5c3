// The console's build: one page, its scripts and styles as files (the
// agent's Content-Security-Policy allows nothing inline), into dist-web.
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: 'dist-web',
    emptyOutDir: true,
    sourcemap: true,
    // No inline scripts or data: modules (CSP: script-src 'self').
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 4096,
  },
});
