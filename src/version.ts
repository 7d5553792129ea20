/** The plugin version; must equal package.json's (`npm run release` refuses to build otherwise, and a unit test checks it). */
export const VERSION = '0.1.0';
