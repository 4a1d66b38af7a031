//! The pages in a real browser: Debian's Chromium driven through its WebDriver (chromedriver),
//! with a fake camera playing the test video, against the whole stack. Each page is checked with
//! axe-core and photographed into `screenshots/` (ignored by git) for a person to look at.

mod browser;
mod pages;
